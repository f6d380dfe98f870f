"""`s3eval view` (a static viewer of a run's samples, or of two runs side by side) and the item selection of
`run --samples / --limit N --stratified`. The in-browser tests open the written viewer from disk in a headless
Chromium (Debian's package; `.ci/run` installs it) and skip, saying why, where there is none."""

import json
import shutil
import time

import pytest

from s3eval.cli import main
from s3eval.config import ConfigError, RunConfig, TaskSpec, config_from_mapping
from s3eval.models.s3.prompt import prompt_pieces, replica_items
from s3eval.runner import run
from s3eval.selection import SelectionError, check, read_ids, select
from s3eval.storage import read_jsonl
from s3eval.task_registry import load_definitions
from s3eval.types import Media, Sample, sha256_hex
from s3eval.viewer import ViewError, build_view
from s3eval.viewer.browser import BrowserError, Chromium, find_chromium
from s3eval.viewer.build import MARKER, iter_items, read_script

from dialog_factory import TWO_DIALOGS, write_dialog_set  # also registers the "recording" model
from media_factory import noise_png
from mmmu_snapshot import png, row, write_snapshot

EVIL = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>&amp;'
GOLDS = "ABCDAB"  # validation_Art_1..6


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def snapshot(tmp_path):
    """Six Art items; Art_1's question carries markup; Art_2 has its own image, the others share one."""
    rows = [row(f"validation_Art_{n}", answer=GOLDS[n - 1],
                question="<image 1> " + (EVIL if n == 1 else f"Question {n}?"),
                images={1: png((10, 200, 10)) if n == 2 else png()}) for n in range(1, 7)]  # fmt: skip
    return write_snapshot(tmp_path / "snap", rows)


def dialog_task(tmp_path) -> str:
    folder = write_dialog_set(tmp_path / "dialogs", TWO_DIALOGS)
    name = f"dlg_{tmp_path.name}"[:60].replace("-", "_")
    entry = {"name": name, "format": "dialog", "path": str(folder)}
    (tmp_path / "defs.yaml").write_text(json.dumps({"tasks": [entry]}))
    load_definitions(tmp_path / "defs.yaml")
    return name


def mmmu_run(tmp_path, snapshot, answers, name, **config):
    responses = tmp_path / f"{name}.json"
    responses.write_text(json.dumps({f"validation_Art_{n}": a for n, a in enumerate(answers, start=1)}))
    cfg = RunConfig(model="replay", model_args={"responses": str(responses)},
                    tasks=[TaskSpec("mmmu_val", {"subjects": "Art"})], data=str(snapshot),
                    output_dir=str(tmp_path / "runs"), leaderboard=None, run_name=name, **config)  # fmt: skip
    return run(cfg, show_progress=False).run_dir


def mixed_run(tmp_path, snapshot):
    """Two runs of the recording model ("answer <n>", n = turns of history): the MMMU items (every answer a parser
    fallback) and a dialog set (images, audio, history)."""
    dialogs = dialog_task(tmp_path)
    common = dict(model="recording", output_dir=str(tmp_path / "runs"), leaderboard=None)
    mmmu = run(RunConfig(tasks=[TaskSpec("mmmu_val", {"subjects": "Art"})], data=str(snapshot), run_name="mixed_mmmu",
                         **common), show_progress=False)  # fmt: skip
    dialog = run(RunConfig(tasks=[TaskSpec(dialogs)], run_name="mixed_dialogs", **common), show_progress=False)
    return mmmu.run_dir, dialog.run_dir, dialogs


# ---------------------------------------------------------------------------------------------- selection


def sample(sid, group="g", unit=None, follows=None):
    return Sample(sid, "q", "choice", ("x", "y"), "A", metadata={"subject": group}, unit=unit, follows=follows)


def test_read_ids_takes_commas_spaces_and_files(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# wanted\nb, c\n\nd  # the last\n")
    assert read_ids(["a,b", f"@{ids}", "a"]) == ["a", "b", "c", "d"]
    with pytest.raises(SelectionError, match="cannot read sample ids from"):
        read_ids([f"@{tmp_path / 'nope.txt'}"])
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(SelectionError, match="lists no sample ids"):
        read_ids([f"@{tmp_path / 'empty.txt'}"])


def test_named_items_bring_their_earlier_turns_and_stay_in_canonical_order():
    samples = [sample("q1"), sample("d1/1", unit="d1"), sample("d1/2", unit="d1", follows="d1/1"),
               sample("d1/3", unit="d1", follows="d1/2"), sample("q2"), sample("d2/1", unit="d2")]  # fmt: skip
    ids = lambda chosen: [s.id for s in chosen]  # noqa: E731
    assert ids(select(samples, ids=["q2", "d1/2"])) == ["d1/1", "d1/2", "q2"]
    assert ids(select(samples, ids=["d1"])) == ["d1/1", "d1/2", "d1/3"]  # a dialog id: all its turns
    assert ids(select(samples, limit=2, ids=["d2", "q1", "q2"])) == ["q1", "q2"]
    check(["q1", "d2"], [type("T", (), {"name": "t"})()], [select(samples, ids=["q1", "d2"])])
    with pytest.raises(SelectionError, match=r"no task of the run has 'zzz'"):
        check(["q1", "zzz"], [type("T", (), {"name": "t"})()], [select(samples, ids=["q1", "zzz"])])
    with pytest.raises(SelectionError, match=r"task\(s\) u have none of the given items"):
        check(["q1"], [type("T", (), {"name": "t"})(), type("T", (), {"name": "u"})()], [[samples[0]], []])


def test_stratified_deals_whole_units_round_robin_over_groups():
    samples = ([sample(f"a{i}", "Art") for i in range(5)] + [sample(f"b{i}", "Bio") for i in range(2)]
               + [sample("d/1", "Dlg", unit="d"), sample("d/2", "Dlg", unit="d", follows="d/1")]
               + [sample(f"c{i}", "Chem") for i in range(3)])  # fmt: skip
    group = lambda s: s.metadata["subject"]  # noqa: E731
    chosen = [s.id for s in select(samples, limit=6, stratify=True, group_of=group)]
    # Round 1: a0 b0 d c0; round 2: a1 b1 — canonical order kept, the dialog whole.
    assert chosen == ["a0", "a1", "b0", "b1", "d/1", "d/2", "c0"]
    assert [s.id for s in select(samples, limit=3)] == ["a0", "a1", "a2"]  # without --stratified: the first N
    bigger = [s.id for s in select(samples, limit=8, stratify=True, group_of=group)]
    assert set(chosen) <= set(bigger) and len(select(samples, limit=99, stratify=True, group_of=group)) == 12


def test_config_fields_are_validated_and_leave_earlier_run_ids_alone():
    plain = RunConfig(tasks=[TaskSpec("mmmu_val")])
    assert RunConfig(tasks=[TaskSpec("mmmu_val")], samples=None, stratified=False).result_hash() == plain.result_hash()
    assert RunConfig(tasks=[TaskSpec("mmmu_val")], samples=["x"]).result_hash() != plain.result_hash()
    config = config_from_mapping({"tasks": ["mmmu_val"], "samples": "a, b", "limit": 4, "stratified": "yes"})
    config.validate()
    assert (config.samples, config.stratified) == (["a", "b"], True)
    with pytest.raises(ConfigError, match="stratified needs a limit"):
        RunConfig(tasks=[TaskSpec("mmmu_val")], stratified=True).validate()
    with pytest.raises(ConfigError, match="samples must be a non-empty list"):
        RunConfig(tasks=[TaskSpec("mmmu_val")], samples=[]).validate()


def test_run_takes_only_the_named_or_a_stratified_share_of_the_items(tmp_path, capsys):
    rows = [row(f"validation_{s}_{n}", answer="A") for s in ("Art", "Music") for n in range(1, 5)]
    snap = write_snapshot(tmp_path / "snap2", rows)
    base = ["run", "--model", "constant", "--model-arg", "answer=A", "--tasks", "mmmu_val", "--task-arg",
            "subjects=Art,Music", "--data", str(snap), "--output-dir", str(tmp_path / "runs"), "--no-leaderboard",
            "--quiet"]  # fmt: skip
    (tmp_path / "ids.txt").write_text("validation_Music_3\n")
    assert main([*base, "--run-name", "named", "--samples", "validation_Art_2", f"@{tmp_path / 'ids.txt'}"]) == 0
    named = [r["sample_id"] for r in read_jsonl(tmp_path / "runs" / "named" / "samples_mmmu_val.jsonl")]
    assert named == ["validation_Art_2", "validation_Music_3"]
    assert main([*base, "--run-name", "strat", "--limit", "4", "--stratified"]) == 0
    strat = [r["sample_id"] for r in read_jsonl(tmp_path / "runs" / "strat" / "samples_mmmu_val.jsonl")]
    assert strat == ["validation_Art_1", "validation_Art_2", "validation_Music_1", "validation_Music_2"]
    results = json.loads((tmp_path / "runs" / "strat" / "results.json").read_text())
    assert results["config"]["stratified"] is True and results["config"]["limit"] == 4
    capsys.readouterr()
    assert main([*base, "--run-name", "bad", "--samples", "validation_Art_99"]) == 2
    assert "--samples: no task of the run has 'validation_Art_99'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- the folder


def test_view_writes_one_folder_with_each_medium_once_and_inert_data(tmp_path, snapshot, capsys):
    run_dir = mmmu_run(tmp_path, snapshot, ["A", EVIL + " B", "C", "D", "", "B"], "a")
    assert main(["view", str(run_dir)]) == 0
    out = run_dir / "view"
    assert f"wrote {out / 'index.html'}: 6 items of mmmu_val, 2 media files" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"index.html", "assets", "data.js", "data", "media", MARKER}
    assert len(list((out / "media").iterdir())) == 2  # six items, two distinct images: each copied once
    page = (out / "index.html").read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page and "http" not in page.split("<body>")[1]
    for data in [out / "data.js", *(out / "data").iterdir()]:
        text = data.read_text()
        assert "<" not in text and ">" not in text  # markup from the data cannot end a script or open a tag
    items = {i["id"]: i for i in iter_items(out)}
    assert list(items) == [f"validation_Art_{n}" for n in range(1, 7)]
    first, second = items["validation_Art_1"], items["validation_Art_2"]
    assert EVIL in first["q"][0][1] and first["q"][1][0] == "media" and first["q"][1][1]["kind"] == "image"
    assert first["q"][1][1]["file"] == f"media/{first['q'][1][1]['sha256']}.png" != second["q"][1][1]["file"]
    assert second["runs"][0]["response"] == EVIL + " B" and second["runs"][0]["status"] == "right"
    assert items["validation_Art_5"]["runs"][0]["fallback"] is True and "notes" not in first  # hashes agree
    meta = read_script(out / "data.js")
    assert meta["runs"][0]["label"] == "a" and meta["tasks"][0]["group_kinds"] == ["subject", "discipline"]
    # Written again, the folder is replaced; a folder s3eval did not write is refused.
    assert main(["view", str(run_dir), "--out", str(out)]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["view", str(run_dir), "--out", str(tmp_path / "mine")]) == 2
    assert "is not a viewer folder s3eval wrote" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_view_shows_the_records_alone_when_the_data_is_gone_and_data_brings_it_back(tmp_path, snapshot, capsys):
    run_dir = mmmu_run(tmp_path, snapshot, "ABCDAB", "a")
    moved = shutil.move(str(snapshot), str(tmp_path / "moved"))
    assert main(["view", str(run_dir), "--out", str(tmp_path / "v1")]) == 0
    assert "note: mmmu_val: questions and media are not shown" in capsys.readouterr().out
    items = list(iter_items(tmp_path / "v1"))
    assert len(items) == 6 and "q" not in items[0] and items[0]["runs"][0]["status"] == "right"
    assert main(["view", str(run_dir), "--out", str(tmp_path / "v2"), "--data", moved]) == 0
    assert all("q" in i and "notes" not in i for i in iter_items(tmp_path / "v2"))


def test_view_of_changed_data_says_so(tmp_path, snapshot):
    run_dir = mmmu_run(tmp_path, snapshot, "ABCDAB", "a")
    rows = [row(f"validation_Art_{n}", answer=GOLDS[n - 1], question=f"<image 1> Changed {n}?") for n in range(1, 7)]
    write_snapshot(tmp_path / "snap", rows)
    out = build_view([run_dir], tmp_path / "v").out
    assert all("the prompt built now differs" in " ".join(i["notes"]) for i in iter_items(out))


def test_view_takes_tasks_and_samples(tmp_path, snapshot, capsys):
    run_dir = mmmu_run(tmp_path, snapshot, "ABCDAB", "a")
    assert main(["view", str(run_dir), "--out", str(tmp_path / "v"), "--samples", "validation_Art_3,validation_Art_5",
                 "--task", "mmmu_val"]) == 0  # fmt: skip
    assert [i["id"] for i in iter_items(tmp_path / "v")] == ["validation_Art_3", "validation_Art_5"]
    assert main(["view", str(run_dir), "--out", str(tmp_path / "v"), "--task", "nope"]) == 2
    assert "no task 'nope'" in capsys.readouterr().err
    with pytest.raises(ViewError, match="--samples: none of 'x'"):
        build_view([run_dir], tmp_path / "v", samples=["x"])


def test_paired_view_puts_the_flips_first_and_compare_links_to_their_cards(tmp_path, snapshot, capsys):
    b = mmmu_run(tmp_path, snapshot, "ABDDCC", "b")  # Art_3, Art_5, Art_6 wrong
    c = mmmu_run(tmp_path, snapshot, "DBCDAB", "c")  # only Art_1 wrong
    assert main(["compare", str(b), str(c)]) == 0
    assert main(["view", str(b), str(c)]) == 0
    out = b / "compare-c" / "view"
    items = list(iter_items(out))
    # b → c: Art_1 right→wrong first; Art_3, Art_5, Art_6 wrong→right next; then the rest, in canonical order.
    assert [(i["id"][11:], i["change"]) for i in items[:4]] == [("Art_1", "down"), ("Art_3", "up"), ("Art_5", "up"),
                                                                 ("Art_6", "up")]  # fmt: skip
    assert all(i["change"] == "same" for i in items[4:])
    meta = read_script(out / "data.js")
    assert meta["paired"] and [r["label"] for r in meta["runs"]] == ["b", "c"]
    page = (b / "compare-c" / "compare.html").read_text()
    assert 'href="view/index.html#task=mmmu_val&amp;id=validation_Art_1"' in page


# ---------------------------------------------------------------------------------------------- media ablation


def media_parts(item):
    return [part for kind, part in item.get("q", []) if kind == "media"]


def shown_hashes(out, item):
    """The hashes of the media files an item shows, from the files' bytes (not the recorded names)."""
    return [sha256_hex((out / part["file"]).read_bytes()) for part in media_parts(item)]


def constant_run(tmp_path, snapshot, name, **config):
    """A run answering A to every item: two of them differ in nothing but what ``config`` says."""
    cfg = RunConfig(model="constant", model_args={"answer": "A"}, tasks=[TaskSpec("mmmu_val", {"subjects": "Art"})],
                    data=str(snapshot), output_dir=str(tmp_path / "runs"), leaderboard=None, run_name=name,
                    **config)  # fmt: skip
    return run(cfg, show_progress=False).run_dir


def recorded(run_dir, task="mmmu_val"):
    return {r["sample_id"]: r for r in read_jsonl(run_dir / f"samples_{task}.jsonl")}


def test_a_withheld_run_is_shown_without_its_media_and_without_a_data_note(tmp_path, snapshot):
    run_dir = mmmu_run(tmp_path, snapshot, "ABCDAB", "w", media="withhold")
    outcome = build_view([run_dir], tmp_path / "v")
    items = list(iter_items(outcome.out))
    assert len(items) == 6 and outcome.media_files == 0 and not (outcome.out / "media").exists()
    assert all(media_parts(i) == [] and "notes" not in i for i in items)
    assert items[1]["q"] == [["text", "<image 1> Question 2?\n(A) cat\n(B) dog\n(C) bird\n(D) fish\n\nAnswer with the "
                                      "option's letter from the given choices directly."]]  # the text as it was sent
    assert all(r["media_hashes"] == [] for r in recorded(run_dir).values())
    assert read_script(outcome.out / "data.js")["tasks"][0]["notices"] == [
        "this run sent the items without their media (--media withhold); the cards show the media as it sent them"]
    assert outcome.notices == ["mmmu_val: this run sent the items without their media (--media withhold); the cards "
                               "show the media as it sent them"]  # fmt: skip


def test_a_noise_run_shows_the_noise_it_sent(tmp_path, snapshot):
    keep = recorded(mmmu_run(tmp_path, snapshot, "ABCDAB", "k"))
    run_dir = mmmu_run(tmp_path, snapshot, "ABCDAB", "n", media="noise", media_seed=3)
    sent = recorded(run_dir)
    out = build_view([run_dir], tmp_path / "v").out
    items = list(iter_items(out))
    assert [shown_hashes(out, i) for i in items] == [sent[i["id"]]["media_hashes"] for i in items]
    assert [[p["sha256"] for p in media_parts(i)] for i in items] == [sent[i["id"]]["media_hashes"] for i in items]
    assert len({h for r in sent.values() for h in r["media_hashes"]}) == 6  # each item its own noise
    assert all(sent[i]["media_hashes"] != keep[i]["media_hashes"] for i in sent)
    assert all("notes" not in i for i in items)
    assert read_script(out / "data.js")["tasks"][0]["notices"] == [
        "this run sent the items with noise in place of their media (--media noise --media-seed 3); the cards show "
        "the media as it sent them"]  # fmt: skip


def test_a_shuffled_run_shows_the_donors_media_even_for_a_few_items(tmp_path, snapshot):
    keep = recorded(mmmu_run(tmp_path, snapshot, "ABCDAB", "k"))
    run_dir = mmmu_run(tmp_path, snapshot, "ABCDAB", "s", media="shuffle", media_seed=1)
    sent = recorded(run_dir)
    # Art_2's own picture went to another item, and Art_2 got the picture the others share.
    assert sent["validation_Art_2"]["media_hashes"] == keep["validation_Art_1"]["media_hashes"]
    assert sorted(h for r in sent.values() for h in r["media_hashes"]) == sorted(
        h for r in keep.values() for h in r["media_hashes"])
    out = build_view([run_dir], tmp_path / "v").out
    items = list(iter_items(out))
    assert [shown_hashes(out, i) for i in items] == [sent[i["id"]]["media_hashes"] for i in items]
    assert all("notes" not in i for i in items)
    # A view of some items shows the donors the whole run drew, not a shuffle of the items shown.
    receiver = next(i for i, r in sent.items() if r["media_hashes"] == keep["validation_Art_2"]["media_hashes"])
    some = build_view([run_dir], tmp_path / "v2", samples=[receiver, "validation_Art_2"]).out
    own, shared = keep["validation_Art_2"]["media_hashes"], keep["validation_Art_1"]["media_hashes"]
    assert {i["id"]: shown_hashes(some, i) for i in iter_items(some)} == {receiver: own, "validation_Art_2": shared}


def test_a_shuffled_dialog_set_keeps_the_media_only_one_dialog_has_and_says_so(tmp_path):
    dialogs = dialog_task(tmp_path)
    config = RunConfig(model="recording", tasks=[TaskSpec(dialogs)], output_dir=str(tmp_path / "runs"),
                       leaderboard=None, run_name="shuffled", media="shuffle")  # fmt: skip
    run_dir = run(config, show_progress=False).run_dir
    sent = recorded(run_dir, dialogs)
    out = build_view([run_dir], tmp_path / "v").out
    items = {i["id"]: i for i in iter_items(out)}
    assert [len(shown_hashes(out, i)) for i in items.values()] == [1, 1, 0, 0]  # d1/1 an image, d1/2 a clip
    assert {k: shown_hashes(out, i) for k, i in items.items()} == {k: r["media_hashes"] for k, r in sent.items()}
    assert all("notes" not in i for i in items.values())
    assert read_script(out / "data.js")["tasks"][0]["notices"] == [
        "this run sent the items with other items' media (--media shuffle); the cards show the media as it sent them",
        "shuffle: only one item has image media, so it keeps its own; shuffle: only one item has audio media, so it "
        "keeps its own"]  # fmt: skip


def test_a_kept_run_beside_a_withheld_one_says_how_b_sent_each_item(tmp_path, snapshot):
    keep = constant_run(tmp_path, snapshot, "k")
    withhold = constant_run(tmp_path, snapshot, "w", media="withhold")
    outcome = build_view([keep, withhold], tmp_path / "v")
    items = list(iter_items(outcome.out))
    kept = recorded(keep)
    assert [shown_hashes(outcome.out, i) for i in items] == [kept[i["id"]]["media_hashes"] for i in items]
    assert [i["notes"] for i in items] == [["run B sent this item without its media (--media withhold)"]] * 6
    assert read_script(outcome.out / "data.js")["tasks"][0]["notices"] == [
        "the runs differ only in their media mode: A sent the items with their own media (--media keep), B without "
        "their media (--media withhold); the cards show the media as A sent them and say how B sent each item"]
    # The other way round: A's cards without media, and what B sent instead.
    outcome = build_view([withhold, keep], tmp_path / "v2")
    items = list(iter_items(outcome.out))
    assert all(media_parts(i) == [] for i in items) and outcome.media_files == 0
    assert [i["notes"] for i in items] == [["run B sent this item with its own media (--media keep)"]] * 6


def test_two_ablations_side_by_side_say_how_b_sent_each_item(tmp_path, snapshot):
    noise = constant_run(tmp_path, snapshot, "n", media="noise")
    shuffle = constant_run(tmp_path, snapshot, "s", media="shuffle", media_seed=1)
    outcome = build_view([noise, shuffle], tmp_path / "v")
    items = list(iter_items(outcome.out))
    sent = recorded(noise)
    assert [shown_hashes(outcome.out, i) for i in items] == [sent[i["id"]]["media_hashes"] for i in items]
    assert [i["notes"] for i in items] == [["run B sent this item with another item's media (--media shuffle "
                                            "--media-seed 1)"]] * 6  # fmt: skip
    assert read_script(outcome.out / "data.js")["tasks"][0]["notices"] == [
        "the runs differ only in their media mode: A sent the items with noise in place of their media (--media "
        "noise), B with other items' media (--media shuffle --media-seed 1); the cards show the media as A sent "
        "them and say how B sent each item"]  # fmt: skip


# ---------------------------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("no Chromium: install Debian's package (apt-get install chromium; .ci/run does) or set "
                    "S3EVAL_CHROMIUM to run the in-browser viewer tests")  # fmt: skip
    try:
        chromium = Chromium()
    except (BrowserError, OSError) as exc:
        pytest.skip(f"Chromium does not start here ({exc})")
    yield chromium
    chromium.close()


def open_view(browser, out, fragment=""):
    browser.open((out / "index.html").resolve().as_uri() + fragment)
    browser.wait_for("document.body.getAttribute('data-ready') === '1'")


def count_text(browser):
    return browser.evaluate("document.getElementById('count').textContent")


def choose(browser, select_id, value):
    browser.evaluate(f"(() => {{ const s = document.getElementById({json.dumps(select_id)}); "
                     f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()")  # fmt: skip


def test_single_view_in_chromium(tmp_path, snapshot, browser):
    mmmu_dir, dialog_dir, dialogs = mixed_run(tmp_path, snapshot)
    out = build_view([mmmu_dir], tmp_path / "v").out
    records = list(read_jsonl(mmmu_dir / "samples_mmmu_val.jsonl"))
    open_view(browser, out)
    assert browser.evaluate("document.querySelectorAll('.card').length") == 6
    assert count_text(browser) == "Showing 1–6 of 6 matching items (of 6)"
    # An image loads.
    assert browser.wait_for("(() => { const i = document.querySelector('img.thumb'); "
                            "return i && i.complete && i.naturalWidth > 0 && i.naturalWidth; })()") == 8
    browser.evaluate("document.querySelector('img.thumb').click()")  # click to enlarge
    assert browser.evaluate("!document.getElementById('lightbox').hidden && document.querySelector('#lightbox img')"
                            ".getAttribute('src') === document.querySelector('img.thumb').getAttribute('src')")
    browser.evaluate("document.getElementById('lightbox').click()")
    assert browser.evaluate("document.getElementById('lightbox').hidden")
    # Filters change the counts, the cards and the other filters' counts.
    wrong = sum(not r["correct"] for r in records)
    assert 0 < wrong < 6 and all(r["fallback"] for r in records)
    choose(browser, "f-result0", "wrong")
    assert count_text(browser) == f"Showing 1–{wrong} of {wrong} matching items (of 6)"
    assert browser.evaluate("document.querySelectorAll('.card').length") == wrong
    assert browser.evaluate("document.querySelector('#f-fallback option[value=yes]').textContent") == f"yes ({wrong})"
    choose(browser, "f-result0", "")
    browser.evaluate("(() => { const s = document.getElementById('search'); s.value = 'question 4';"
                     " s.dispatchEvent(new Event('input')); })()")  # fmt: skip
    browser.wait_for("document.getElementById('count').textContent.startsWith('Showing 1–1 of 1 ')")
    assert browser.evaluate("document.querySelector('.card').getAttribute('data-id')") == "validation_Art_4"
    # Markup in a question or a response is shown as text and runs nothing.
    open_view(browser, out, "#task=mmmu_val&id=validation_Art_1")
    shown = browser.evaluate("document.querySelector('.card.target .text').textContent")
    assert EVIL in shown
    assert browser.evaluate("window.__pwned === undefined && !document.querySelector('img[src=x]')")
    assert browser.evaluate("document.querySelectorAll('script').length") == 3  # data.js, viewer.js, task data
    assert browser.errors == []
    assert all(url.startswith(("file://", "data:")) for url in browser.requests), browser.requests

    # Dialogs: the transcript with the model's own answers, audio with a playable source.
    out = build_view([dialog_dir], tmp_path / "vd").out
    open_view(browser, out, f"#task={dialogs}&id=d1/3")
    card = "document.querySelector('.card.target')"
    assert browser.evaluate(f"{card}.getAttribute('data-id')") == "d1/3"
    assert browser.evaluate(f"Array.from({card}.querySelectorAll('.transcript .answer')).map(a => a.textContent)") == [
        "model: answer 0", "model: answer 1"]
    assert browser.evaluate("document.createElement('audio').canPlayType('audio/wav')") != ""
    duration = browser.wait_for(f"(() => {{ const a = {card}.querySelector('audio'); "
                                f"return a && a.readyState >= 1 && a.duration; }})()")  # fmt: skip
    assert duration == pytest.approx(1.0, abs=0.05)
    assert browser.errors == []


def test_s3_prompt_in_the_page_is_the_one_the_model_is_given(tmp_path, snapshot, browser):
    _, dialog_dir, dialogs = mixed_run(tmp_path, snapshot)
    results = json.loads((dialog_dir / "results.json").read_text())
    results["model"] = {"name": "s3", "checkpoint": "ckpt", "checkpoint_hash": "0" * 64,
                        "details": {"spec": {"system_prompt": "Be <brief>."}}}  # fmt: skip
    (dialog_dir / "results.json").write_text(json.dumps(results))
    out = build_view([dialog_dir], tmp_path / "v").out
    open_view(browser, out, f"#task={dialogs}&id=d1/3")
    shown = browser.evaluate("document.querySelector('.card.target .s3-prompt').textContent")
    image, audio = Media("image", "image_1", data=noise_png(1)), Media("audio", "audio_1", data=b"")
    history = [(replica_items(("What is this?", image)), "answer 0"),
               (replica_items(("And this sound?", audio)), "answer 1")]
    assert shown == "".join(prompt_pieces(replica_items(("What did I show first?",)), "Be <brief>.", history))


def test_paired_view_in_chromium_lists_the_flips_first_and_compare_links_there(tmp_path, snapshot, browser):
    a = mmmu_run(tmp_path, snapshot, "ABCDAB", "a")
    b = mmmu_run(tmp_path, snapshot, "DBCDXC", "b")  # Art_1 right→wrong, Art_5 right→wrong (fallback), Art_6 too
    assert main(["compare", str(a), str(b)]) == 0
    assert main(["view", str(a), str(b)]) == 0
    browser.open((a / "compare-b" / "compare.html").resolve().as_uri())
    link = browser.evaluate("document.querySelector('table.flips a').href")
    assert link.endswith("/compare-b/view/index.html#task=mmmu_val&id=validation_Art_1")
    browser.open(link)
    browser.wait_for("!!document.querySelector('.card.target')")
    assert browser.evaluate("document.querySelector('.card.target').getAttribute('data-id')") == "validation_Art_1"
    ids = browser.evaluate("Array.from(document.querySelectorAll('.card')).map(c => c.getAttribute('data-id'))")
    badges = browser.evaluate("Array.from(document.querySelectorAll('.card .badge.change')).map(b => b.textContent)")
    flips = sum(badge == "right → wrong" for badge in badges)
    assert flips >= 2 and badges[:flips] == ["right → wrong"] * flips and len(ids) == 6
    assert browser.evaluate("document.querySelectorAll('.card .run-result').length") == 12  # A and B side by side
    header = browser.evaluate("document.querySelector('header.top').textContent")
    assert "a — model replay" in header and "b — model replay" in header
    choose(browser, "f-change", "both right")
    assert count_text(browser) == f"Showing 1–{6 - flips} of {6 - flips} matching items (of 6)"
    assert browser.errors == []


def test_media_gain_view_in_chromium_shows_a_and_says_how_b_sent_it(tmp_path, snapshot, browser):
    keep = constant_run(tmp_path, snapshot, "k")
    noise = constant_run(tmp_path, snapshot, "n", media="noise")
    out = build_view([keep, noise], tmp_path / "v").out
    open_view(browser, out, "#task=mmmu_val&id=validation_Art_2")
    head = browser.evaluate("Array.from(document.querySelectorAll('#task-head .notice')).map(n => n.textContent)")
    assert head == ["the runs differ only in their media mode: A sent the items with their own media (--media keep), "
                    "B with noise in place of their media (--media noise); the cards show the media as A sent them "
                    "and say how B sent each item"]  # fmt: skip
    card = "document.querySelector('.card.target')"
    assert browser.evaluate(f"Array.from({card}.querySelectorAll('.notice')).map(n => n.textContent)") == [
        "run B sent this item with noise in place of its media (--media noise)"]
    assert browser.wait_for(f"(() => {{ const i = {card}.querySelector('img.thumb'); "
                            "return i && i.complete && i.naturalWidth > 0 && i.naturalWidth; })()") == 8  # A's picture
    browser.screenshot(tmp_path / "media-gain.png")
    assert browser.errors == []


def test_ten_thousand_items_open_and_filter_at_once(tmp_path, browser):
    folder = tmp_path / "big"
    (folder / "images").mkdir(parents=True)
    for k in range(3):
        (folder / "images" / f"{k}.png").write_bytes(noise_png(k))
    cats = ["object", "colour", "count", "scene", "text"]
    (folder / "questions.jsonl").write_text("".join(json.dumps({
        "id": f"q{i:05d}", "question": f"Question {i}?", "image": f"images/{i % 3}.png", "choices": ["x", "y", "z"],
        "answer": "xyz"[i % 3], "category": cats[i % 5]}) + "\n" for i in range(10_000)))  # fmt: skip
    name = f"big_{tmp_path.name}"[:60].replace("-", "_")
    (tmp_path / "defs.yaml").write_text(json.dumps({"tasks": [{"name": name, "path": str(folder), "modality": "image",
                                                               "question_type": "choice", "metric": "choice_letter"}]}))
    cfg = RunConfig(model="constant", model_args={"answer": "A"}, tasks=[TaskSpec(name)],
                    define=[str(tmp_path / "defs.yaml")], output_dir=str(tmp_path / "runs"), leaderboard=None,
                    run_name="big")  # fmt: skip
    outcome = build_view([run(cfg, show_progress=False).run_dir], tmp_path / "v")
    assert outcome.items == 10_000 and outcome.media_files == 3
    start = time.monotonic()
    open_view(browser, outcome.out)
    assert time.monotonic() - start < 10
    assert browser.evaluate("document.querySelectorAll('.card').length") == 50  # a page, not 10,000 cards
    took = browser.evaluate("(() => { const s = document.getElementById('f-group:category'); "
                            "const t = performance.now(); s.value = 'colour'; s.dispatchEvent(new Event('change')); "
                            "return performance.now() - t; })()")  # fmt: skip
    assert count_text(browser) == "Showing 1–50 of 2000 matching items (of 10000)"
    assert took < 1000, f"filtering 10,000 items took {took:.0f} ms"
    assert browser.errors == []
