/* s3eval viewer: renders the items of data/task-<i>.js (loaded by <script> tags: file:// pages may not fetch()).
 * Every text from the data goes into the page as text (textContent / text nodes), never as markup. Only the
 * visible page of cards is in the DOM, so a run of any size filters at once. */
(function () {
  "use strict";

  var META = window.S3VIEW;
  var PAGE_SIZES = [20, 50, 100, 200];
  var MEDIA_FILE = /^media\/[0-9a-f]{64}\.[a-z0-9]{2,5}$/;
  var DATA_FILE = /^data\/task-[0-9]+\.js$/;
  var STATUS_ORDER = ["right", "wrong", "partial", "unscored"];
  var RUN_NAMES = ["A", "B"];

  var state = { task: -1, items: [], byId: {}, dims: [], values: {}, search: "", matches: [], page: 0,
                pageSize: 50, target: null, renders: 0 };
  var app = document.getElementById("app");

  // ---- small DOM helpers (text only) ----
  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (key) {
        var value = props[key];
        if (value === undefined || value === null || value === false) return;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = String(value);
        else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.append(child instanceof Node ? child : String(child));
  }
  function str(value) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) return value.map(str).join(" | ");
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }
  function pct(x) { return (x === null || x === undefined) ? "—" : (100 * x).toFixed(1) + " %"; }
  function num(x) { return (x === null || x === undefined) ? "—" : (Math.round(x * 10000) / 10000).toString(); }

  // ---- header ----
  function runLine(run, i) {
    var bits = ["model " + str(run.model)];
    if (run.checkpoint) bits.push("checkpoint " + run.checkpoint);
    if (run.checkpoint_hash) bits.push("hash " + String(run.checkpoint_hash).slice(0, 12));
    if (run.timestamp) bits.push(String(run.timestamp).replace("T", " ").slice(0, 19));
    if (run.git_commit) bits.push("commit " + String(run.git_commit).slice(0, 12));
    var settings = { model_args: run.model_args, model: run.model_details, config: run.config, parser: run.parser,
                     config_hash: run.config_hash, path: run.path };
    return el("div", { class: "run-line" },
      META.paired ? el("span", { class: "run-tag" + (i ? " b" : ""), text: RUN_NAMES[i] }) : null,
      el("b", { text: run.label }), " — " + bits.join(", "),
      el("details", { class: "settings" }, el("summary", { text: "settings" }),
         el("pre", { text: JSON.stringify(settings, null, 2) })));
  }

  function header() {
    var title = META.paired ? "s3eval: " + META.runs[0].label + " vs " + META.runs[1].label
                            : "s3eval: " + META.runs[0].label;
    document.title = title;
    return el("header", { class: "top" }, el("h1", { text: title }), META.runs.map(runLine));
  }

  function tabs() {
    return el("nav", { class: "tabs", id: "tabs" }, META.tasks.map(function (task, i) {
      return el("button", { type: "button", "data-task": i, text: task.name + " (" + task.n + ")",
                            onclick: function () { openTask(i); } });
    }));
  }

  // ---- data loading ----
  function loadTask(i) {
    return new Promise(function (resolve, reject) {
      var have = window.S3VIEW_TASKS && window.S3VIEW_TASKS[i];
      if (have) { resolve(have); return; }
      var file = META.tasks[i].file;
      if (!DATA_FILE.test(file)) { reject(new Error("bad data file name")); return; }
      var script = el("script", { src: file });
      script.onload = function () {
        var data = window.S3VIEW_TASKS && window.S3VIEW_TASKS[i];
        data ? resolve(data) : reject(new Error(file + " holds no data"));
      };
      script.onerror = function () { reject(new Error("cannot load " + file)); };
      document.head.appendChild(script);
    });
  }

  // ---- filters: each dimension gives every item a list of values; counts are faceted ----
  function statusOf(item, r) { return (item.runs[r] || {}).status || "unscored"; }
  function changeOf(item, task) {
    if (item.change === "down") return task.right_wrong ? "right → wrong" : "score down";
    if (item.change === "up") return task.right_wrong ? "wrong → right" : "score up";
    var a = statusOf(item, 0);
    return task.right_wrong ? "both " + a : "same score";
  }
  function dimensions(task) {
    var dims = [];
    if (META.paired) {
      dims.push({ id: "change", label: "A → B", values: function (it) { return [changeOf(it, task)]; },
                  order: ["right → wrong", "wrong → right", "score down", "score up", "both right", "both wrong",
                          "both partial", "both unscored", "same score"] });
    }
    task.group_kinds.forEach(function (kind) {
      dims.push({ id: "group:" + kind, label: kind.replace(/_/g, " "),
                  values: function (it) { return [str((it.groups || {})[kind]) || "(none)"]; } });
    });
    META.runs.forEach(function (run, r) {
      var suffix = META.paired ? " (" + RUN_NAMES[r] + ")" : "";
      dims.push({ id: "result" + r, label: "result" + suffix, order: STATUS_ORDER,
                  values: function (it) { return [statusOf(it, r)]; } });
    });
    dims.push({ id: "fallback", label: "fallback", order: META.paired ? ["none", "A", "B"] : ["no", "yes"],
                values: function (it) {
                  if (!META.paired) return [it.runs[0].fallback ? "yes" : "no"];
                  var v = [];
                  it.runs.forEach(function (rr, r) { if (rr.fallback) v.push(RUN_NAMES[r]); });
                  return v.length ? v : ["none"];
                } });
    dims.push({ id: "error", label: "error kind", order: ["none"],
                values: function (it) {
                  var v = [];
                  it.runs.forEach(function (rr) { if (rr.error_kind && v.indexOf(rr.error_kind) < 0) v.push(rr.error_kind); });
                  return v.length ? v : ["none"];
                } });
    return dims;
  }

  function haystack(item) {
    var bits = [item.id, str(item.gold), (item.choices || []).join("\n"), (item.cands || []).join("\n")];
    (item.q || []).forEach(function (p) { if (p[0] === "text") bits.push(p[1]); });
    item.runs.forEach(function (rr) { bits.push(str(rr.response), str(rr.parsed), str(rr.error)); });
    Object.keys(item.groups || {}).forEach(function (k) { bits.push(str(item.groups[k])); });
    return bits.join("\n").toLowerCase();
  }

  function prepare(task, data) {
    state.items = data.items;
    state.byId = {};
    state.dims = dimensions(task);
    state.items.forEach(function (item, index) {
      item._index = index;
      item._hay = haystack(item);
      item._vals = state.dims.map(function (d) { return d.values(item); });
      state.byId[item.id] = item;
    });
    state.values = {};
    state.search = "";
  }

  function passes(item, skip) {
    for (var d = 0; d < state.dims.length; d++) {
      if (d === skip) continue;
      var want = state.values[state.dims[d].id];
      if (want && item._vals[d].indexOf(want) < 0) return false;
    }
    return !state.search || item._hay.indexOf(state.search) >= 0;
  }

  function applyFilters() {
    state.matches = state.items.filter(function (it) { return passes(it, -1); });
    var pages = Math.max(1, Math.ceil(state.matches.length / state.pageSize));
    if (state.page >= pages) state.page = pages - 1;
    updateCounts();
    renderPage();
  }

  function updateCounts() {
    state.dims.forEach(function (dim, d) {
      var counts = {}, total = 0, seen = [];
      state.items.forEach(function (it) {
        if (!passes(it, d)) return;
        total++;
        it._vals[d].forEach(function (v) { if (!(v in counts)) { counts[v] = 0; seen.push(v); } counts[v]++; });
      });
      state.items.forEach(function (it) {  // values no item passing the other filters has: listed with 0
        it._vals[d].forEach(function (v) { if (!(v in counts)) { counts[v] = 0; seen.push(v); } });
      });
      if (dim.order) {
        seen.sort(function (a, b) {
          var ia = dim.order.indexOf(a), ib = dim.order.indexOf(b);
          return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
        });
      }
      var select = document.getElementById("f-" + dim.id);
      var chosen = state.values[dim.id] || "";
      select.textContent = "";
      select.append(el("option", { value: "", text: "all (" + total + ")" }));
      seen.forEach(function (v) { select.append(el("option", { value: v, text: v + " (" + counts[v] + ")" })); });
      select.value = chosen;
    });
    var n = state.matches.length, from = state.page * state.pageSize;
    document.getElementById("count").textContent = n === 0 ? "No item matches (of " + state.items.length + ")"
      : "Showing " + (from + 1) + "–" + Math.min(n, from + state.pageSize) + " of " + n + " matching items (of "
        + state.items.length + ")";
  }

  function filterBar() {
    var bar = el("div", { class: "filters", id: "filters" });
    state.dims.forEach(function (dim) {
      bar.append(el("label", null, dim.label, el("select", { id: "f-" + dim.id, "data-dim": dim.id,
        onchange: function (e) { state.values[dim.id] = e.target.value; state.page = 0; applyFilters(); } })));
    });
    var timer = null;
    bar.append(el("label", null, "search (id, question, options, response, gold)",
      el("input", { type: "search", id: "search", placeholder: "text…", oninput: function (e) {
        clearTimeout(timer);
        var value = e.target.value.trim().toLowerCase();
        timer = setTimeout(function () { state.search = value; state.page = 0; applyFilters(); }, 120);
      } })));
    var size = el("select", { id: "page-size", onchange: function (e) {
      state.pageSize = parseInt(e.target.value, 10); state.page = 0; applyFilters(); } });
    PAGE_SIZES.forEach(function (n) { size.append(el("option", { value: n, text: n })); });
    size.value = String(state.pageSize);
    bar.append(el("label", null, "per page", size));
    bar.append(el("button", { type: "button", id: "reset", text: "clear filters", onclick: function () {
      state.values = {}; state.search = ""; state.page = 0; document.getElementById("search").value = "";
      applyFilters(); } }));
    return bar;
  }

  function pager(id) {
    var pages = Math.max(1, Math.ceil(state.matches.length / state.pageSize));
    return el("div", { class: "pager", id: id },
      el("button", { type: "button", class: "prev", disabled: state.page === 0,
                     onclick: function () { state.page--; applyFilters(); window.scrollTo(0, 0); }, text: "‹ previous" }),
      "page " + (state.page + 1) + " of " + pages,
      el("button", { type: "button", class: "next", disabled: state.page >= pages - 1,
                     onclick: function () { state.page++; applyFilters(); window.scrollTo(0, 0); }, text: "next ›" }));
  }

  // ---- cards ----
  function mediaPart(part) {
    var label = part.kind + ": " + part.name;
    if (!part.file || !MEDIA_FILE.test(part.file)) {
      return el("div", { class: "missing", text: "[" + label + (part.note ? " — " + part.note : "") + "]" });
    }
    var caption = el("figcaption", { text: label, title: "sha256 " + (part.sha256 || "") });
    if (part.kind === "image") {
      return el("figure", null, el("img", { class: "thumb", loading: "lazy", src: part.file, alt: label,
        onclick: function () { openLightbox(part.file, label + " — sha256 " + (part.sha256 || "")); } }), caption);
    }
    return el("figure", null, el("audio", { controls: true, preload: "metadata", src: part.file }), caption);
  }

  function renderParts(parts) {
    var box = el("div", { class: "parts" }), row = null;
    parts.forEach(function (p) {
      if (p[0] === "text") { row = null; if (p[1]) box.append(el("div", { class: "text", text: p[1] })); return; }
      if (!row) { row = el("div", { class: "media-row" }); box.append(row); }
      row.append(mediaPart(p[1]));
    });
    return box;
  }

  function placeholders(parts) {
    return parts.map(function (p) { return p[0] === "text" ? p[1] : "<" + p[1].kind + ": " + p[1].name + ">"; }).join("\n");
  }

  function chain(item) {  // the earlier turns of a dialog, first first
    var turns = [], seen = {}, prev = item.prev;
    while (prev && !seen[prev]) {
      seen[prev] = true;
      var earlier = state.byId[prev];
      turns.unshift(earlier || { id: prev, missing: true });
      prev = earlier ? earlier.prev : null;
    }
    return turns;
  }

  function s3Prompt(p, item, r) {  // s3eval.models.s3.prompt.prompt_pieces, joined
    var pieces = [p.bos, p.begin_system, p.system, p.end];
    function user(parts) {
      parts.forEach(function (part) {
        if (part[0] === "text" && !part[1]) return;
        pieces.push(p.begin_user, part[0] === "text" ? part[1] : p[part[1].kind], p.end);
      });
    }
    var turns = chain(item);
    for (var i = 0; i < turns.length; i++) {
      if (turns[i].missing || !turns[i].q) return null;
      user(turns[i].q);
      pieces.push(p.begin_bot, str((turns[i].runs[r] || {}).response) + p.end);
    }
    user(item.q);
    pieces.push(p.begin_bot);
    return pieces.join("");
  }

  function kv(key, value, cls) {
    return el("div", { class: "kv" }, el("span", { class: "k", text: key }), el("span", { class: cls || "", text: value }));
  }

  function runResult(item, rr, r, task) {
    var box = el("div", { class: "run-result", "data-run": r });
    box.append(el("h5", null, META.paired ? el("span", { class: "run-tag" + (r ? " b" : ""), text: RUN_NAMES[r] }) : null,
                  META.runs[r].label, " ", el("span", { class: "badge " + (rr.status || "unscored"), text: rr.status || "unscored" })));
    box.append(el("div", { class: "k", text: "raw response" }));
    box.append(rr.response === undefined ? el("div", { class: "missing", text: "(no response)" })
                                         : el("pre", { class: "response", text: rr.response }));
    if (rr.parsed !== undefined || rr.rule) {
      box.append(kv("parsed:", str(rr.parsed) + (rr.rule ? "  (rule: " + rr.rule + ")" : "")));
    }
    if (rr.fallback) box.append(kv("fallback:", "yes — the parser found no answer and drew one at random"));
    if (rr.error) box.append(el("div", { class: "kv" }, el("span", { class: "badge error", text: "error: " + (rr.error_kind || "?") }), " ",
                                el("span", { class: "error-text", text: rr.error })));
    box.append(kv("score:", num(rr.score !== undefined ? rr.score : (rr.correct ? 1 : rr.correct === false ? 0 : null))
                            + (rr.metric ? "  (" + rr.metric + ")" : "")));
    var metrics = Object.keys(rr.scores || {});
    if (metrics.length) {
      box.append(el("table", { class: "scores" }, metrics.map(function (m) {
        return el("tr", null, el("td", { text: m }), el("td", { text: num(rr.scores[m]) }));
      })));
    }
    var p = META.runs[r].s3_prompt;
    if (p && item.q) {
      var full = s3Prompt(p, item, r);
      if (full !== null) {
        box.append(el("details", { class: "prompt" }, el("summary", { text: "S³ prompt as tokenised (its own earlier answers)" }),
                      el("pre", { class: "s3-prompt", text: full })));
      }
    }
    return box;
  }

  function card(item, task) {
    var node = el("article", { class: "card", "data-id": item.id });
    var head = el("div", { class: "card-head" });
    head.append(el("a", { class: "card-id", href: "#task=" + encodeURIComponent(task.name) + "&id=" + encodeURIComponent(item.id),
                          text: item.id, title: "link to this item" }));
    if (META.paired) head.append(el("span", { class: "badge change " + (item.change || "same"), text: changeOf(item, task) }));
    item.runs.forEach(function (rr, r) {
      var who = META.paired ? RUN_NAMES[r] + ": " : "";
      head.append(el("span", { class: "badge status " + (rr.status || "unscored"), text: who + (rr.status || "unscored") }));
      if (rr.fallback) head.append(el("span", { class: "badge flag fallback", text: who + "fallback" }));
      if (rr.error_kind) head.append(el("span", { class: "badge error", text: who + "error: " + rr.error_kind }));
    });
    Object.keys(item.groups || {}).forEach(function (k) {
      head.append(el("span", { class: "chip", text: k.replace(/_/g, " ") + ": " + str(item.groups[k]) }));
    });
    node.append(head);
    (item.notes || []).forEach(function (n) { node.append(el("div", { class: "notice", text: n })); });
    var side = el("div", { class: "item-side" });
    node.append(el("div", { class: "card-body" + (META.paired ? " paired" : "") }, side,
                   el("div", { class: "runs" + (META.paired ? " two" : "") },
                      item.runs.map(function (rr, r) { return runResult(item, rr, r, task); }))));

    var turns = chain(item);
    if (turns.length) {
      var transcript = el("div", { class: "transcript" });
      turns.forEach(function (turn, t) {
        var box = el("div", { class: "turn" }, el("div", { class: "k", text: "turn " + (t + 1) + " — user" }));
        if (turn.missing || !turn.q) box.append(el("div", { class: "missing", text: turn.missing ? "(" + turn.id + " is not in this view)" : "(question not available)" }));
        else box.append(renderParts(turn.q));
        if (!turn.missing) {
          turn.runs.forEach(function (rr, r) {
            box.append(el("div", { class: "answer" }, (META.paired ? RUN_NAMES[r] + " " : "") + "model: ",
                          rr.response === undefined ? el("span", { class: "missing", text: "(no answer)" }) : rr.response));
          });
        }
        transcript.append(box);
      });
      side.append(el("h4", { text: "dialog so far (with the model's own answers)" }), transcript);
    }

    side.append(el("h4", { text: turns.length ? "turn " + (turns.length + 1) + " — user" : "question" }));
    side.append(item.q ? renderParts(item.q) : el("div", { class: "missing", text: "(question and media not available — see the note above the list)" }));

    if (item.choices && item.choices.length) {
      var list = el("ol", { class: "choices" });
      item.choices.forEach(function (choice, i) {
        var letter = String.fromCharCode(65 + i);
        var li = el("li", { class: item.gold === letter ? "gold" : "" }, el("span", { class: "letter", text: letter + "." }), choice);
        item.runs.forEach(function (rr, r) {
          if (rr.parsed === letter) li.append(el("span", { class: "picked", text: "← " + (META.paired ? RUN_NAMES[r] : "parsed") }));
        });
        if (item.gold === letter) li.append(el("span", { class: "picked", text: "✓ gold" }));
        list.append(li);
      });
      side.append(list);
    }
    if (item.cands && item.cands.length) {
      var table = el("table", { class: "cands" }, el("tr", null, el("th", { text: "candidate answer (first: the reference)" }),
        item.runs.map(function (rr, r) { return el("th", { text: "mean NLL" + (META.paired ? " " + RUN_NAMES[r] : "") }); })));
      item.cands.forEach(function (c, i) {
        table.append(el("tr", null, el("td", { text: c }), item.runs.map(function (rr) { return el("td", { text: num((rr.nll || [])[i]) }); })));
      });
      side.append(table);
    }
    side.append(el("div", { class: "gold-line" }, el("span", { class: "k", text: "gold: " }),
                   el("b", { text: item.gold === undefined ? "(none)" : str(item.gold) })));
    if (item.q) {
      side.append(el("details", { class: "prompt" }, el("summary", { text: "prompt as sent (the replica; media as placeholders)" }),
                     el("pre", { class: "replica", text: placeholders(item.q) })));
    }
    return node;
  }

  function renderPage() {
    var task = META.tasks[state.task];
    var cards = document.getElementById("cards");
    cards.textContent = "";
    var from = state.page * state.pageSize;
    var slice = state.matches.slice(from, from + state.pageSize);
    if (!slice.length) cards.append(el("p", { class: "empty", text: "No item matches the filters." }));
    slice.forEach(function (item) { cards.append(card(item, task)); });
    ["pager-top", "pager-bottom"].forEach(function (id) { document.getElementById(id).replaceWith(pager(id)); });
    state.renders++;
    document.body.setAttribute("data-renders", String(state.renders));
    if (state.target) {
      var target = cards.querySelector('[data-id="' + CSS.escape(state.target) + '"]');
      state.target = null;
      if (target) { target.classList.add("target"); target.scrollIntoView({ block: "start" }); }
    }
  }

  function taskHead(task) {
    var head = el("div", { class: "task-head", id: "task-head" });
    head.append(el("div", null, "metric " + str(task.metric) + " · " + str(task.kind).replace("_", "/") + " · unit: " + str(task.unit)));
    task.headlines.forEach(function (h, r) {
      if (!h) return;
      var ci = h.interval ? " [" + pct(h.interval.low) + ", " + pct(h.interval.high) + "]" : "";
      head.append(el("div", { class: "headline" }, (META.paired ? RUN_NAMES[r] + " (whole run): " : "") + h.metric + " " + pct(h.score)
                     + ci + " over " + h.n_units + " " + h.unit + (h.n_units === 1 ? "" : "s")));
    });
    task.notices.forEach(function (n) { head.append(el("div", { class: "notice", text: n })); });
    return head;
  }

  function openTask(i, target) {
    var task = META.tasks[i];
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.classList.toggle("active", b.getAttribute("data-task") === String(i));
    });
    var main = document.getElementById("main");
    main.textContent = "";
    main.append(el("p", { text: "Loading " + task.name + "…" }));
    document.body.setAttribute("data-ready", "0");
    return loadTask(i).then(function (data) {
      state.task = i;
      state.page = 0;
      prepare(task, data);
      main.textContent = "";
      main.append(taskHead(task), filterBar(), el("div", { class: "count", id: "count" }), el("div", { id: "pager-top" }),
                  el("div", { id: "cards" }), el("div", { id: "pager-bottom" }));
      if (target) {
        var at = state.items.findIndex(function (it) { return it.id === target; });
        if (at >= 0) { state.page = Math.floor(at / state.pageSize); state.target = target; }
      }
      applyFilters();
      document.body.setAttribute("data-ready", "1");
      document.body.setAttribute("data-task", task.name);
    }, function (err) {
      main.textContent = "";
      main.append(el("div", { class: "notice", text: String(err.message || err) }));
    });
  }

  // ---- lightbox ----
  function openLightbox(src, caption) {
    var box = document.getElementById("lightbox");
    box.querySelector("img").setAttribute("src", src);
    box.querySelector(".caption").textContent = caption;
    box.hidden = false;
  }
  function closeLightbox() { document.getElementById("lightbox").hidden = true; }

  // ---- #task=NAME&id=ID links (compare.html's flipped items point here) ----
  function fromHash() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    var name = params.get("task"), id = params.get("id");
    var i = META.tasks.findIndex(function (t) { return t.name === name; });
    if (i < 0) return false;
    if (i === state.task && id) {
      state.values = {}; state.search = "";
      var at = state.items.findIndex(function (it) { return it.id === id; });
      var search = document.getElementById("search");
      if (search) search.value = "";
      if (at >= 0) { state.page = Math.floor(at / state.pageSize); state.target = id; }
      applyFilters();
      return true;
    }
    openTask(i, id);
    return true;
  }

  function start() {
    if (!META || !META.tasks) {
      app.textContent = "data.js is missing or broken: write the viewer again with `s3eval view`.";
      return;
    }
    app.textContent = "";
    app.append(header(), tabs(), el("main", { id: "main" }),
               el("div", { id: "lightbox", hidden: true, onclick: closeLightbox },
                  el("img", { alt: "enlarged image" }), el("div", { class: "caption" })));
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") closeLightbox(); });
    window.addEventListener("hashchange", fromHash);
    if (!META.tasks.length) { document.getElementById("main").append(el("p", { class: "empty", text: "No task." })); return; }
    if (!fromHash()) openTask(0);
  }

  start();
})();
