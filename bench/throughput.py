"""MMMU-validation-shaped throughput of S³ as users run it, against the bare engine and the released code's way.

Builds an S³ with random weights in memory — ``--shape 7b``: exact Mistral-7B-v0.1 shapes (vocab 32008 after
resizing, LoRA r = 8 on q/v with full embed_tokens/lm_head copies), ImageBind-huge and the real projector shapes;
``--shape tiny``: the test release's shapes, for CPU evidence in CI time. Throughput does not depend on weight
values; every item generates exactly ``--new-tokens`` tokens (min_new_tokens).

Work: the 90 real items of ../shared/mmmu_mini (official prompts, all referenced images) cycled to ``--items``
(900 = MMMU validation). Cycled copies get distinct image bytes (zero bytes appended after the PNG end, pixels
unchanged) so the feature cache cannot profit from the repetition. Every pass's time includes tokenisation.

Side by side in one process:
- naive — the released code's way (the baseline): batch size 1, no feature cache, LoRA unmerged, fp32
  (``--naive-dtype``); optionally on the first ``--naive-items`` items only (its items/s is what is compared);
- engine — the bare engine functions: cost-sorted batches of ``--batch-size``, the feature cache, LoRA merged,
  ``--dtype``;
- engine, second pass — the same work again with the feature cache warm (encoder time ≈ 0);
- runner — what ``s3eval run`` does: ``S3Model`` driven by the runner's ``generate_all`` (the task handed over in
  windows of ``--window``, the backend's own cost sort and token-budget batches of ``--runner-batch-size``
  (default auto), the background media look-ahead, media hashing, response keys and a response log fsynced per
  GPU batch), cold feature cache;
- options (``--static-cache``, ``--compile``): the engine again with a static KV cache / torch.compile;
- likelihood — choice ranking as ``choice_likelihood`` runs it, each item's options cycled to
  ``--likelihood-candidates`` candidates, through ``S3Model.loglikelihood`` with and without the shared prompt
  (prompt run once, its key/value cache reused per candidate), with the largest difference;
- dtypes — the engine in bfloat16 against float32 on the first ``--flip-items`` items: greedy answers that differ
  and likelihood rankings that flip (``--no-dtype-check`` skips it).

    python bench/throughput.py --device cpu --shape tiny --items 180 --new-tokens 8
    python bench/throughput.py --shape 7b --items 900 --new-tokens 8 32 --naive-items 60   # on a GPU

Writes bench/results/<device>-<shape>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s3eval.config import RunConfig, TaskSpec  # noqa: E402
from s3eval.generation import Pending, generate_all  # noqa: E402
from s3eval.models.s3 import engine  # noqa: E402
from s3eval.models.s3.builder import TINY_IMAGEBIND, TINY_LM, build_tokenizer  # noqa: E402
from s3eval.models.s3.encoders import MediaEncoder, import_imagebind  # noqa: E402
from s3eval.models.s3.feature_cache import FeatureCache  # noqa: E402
from s3eval.models.s3.model import S3Model  # noqa: E402
from s3eval.models.s3.projector import MODALITIES, ModalityAdapter  # noqa: E402
from s3eval.models.s3.prompt import NOTEBOOK_SYSTEM_PROMPT  # noqa: E402
from s3eval.models.s3.spec import S3Spec  # noqa: E402
from s3eval.response_log import ResponseLog  # noqa: E402
from s3eval.task import TaskOptions  # noqa: E402
from s3eval.task_registry import build_task  # noqa: E402
from s3eval.types import LikelihoodRequest, Record, Request  # noqa: E402

MISTRAL_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768, sliding_window=4096,
                  tie_word_embeddings=False)  # fmt: skip
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Dense bf16 tensor-core peak (FLOP/s) and memory bandwidth (B/s), from the vendors' data sheets (SXM parts).
HARDWARE = {"H100": (989e12, 3.35e12), "H200": (989e12, 4.8e12)}


def mmmu_work(items: int) -> list[Request]:
    data = ROOT.parent / "shared" / "mmmu_mini"
    if not data.is_dir():
        raise SystemExit(f"{data} is absent: the benchmark replays its 90 real MMMU items")
    task = build_task("mmmu_val_all_images", TaskOptions(data=str(data)))
    samples = task.samples()
    base = [task.build_request(s) for s in samples]
    work = []
    for i in range(items):
        r, copy = base[i % len(base)], i // len(base)
        media = tuple(replace(m, data=m.read_bytes() + b"\0" * copy) for m in r.media)
        options = samples[i % len(base)].choices or ("yes", "no")  # open questions: a yes/no pair
        work.append(Request(r.task, f"{r.sample_id}#{copy}", r.prompt, media, candidates=tuple(options)))
    return work


def build(shape: str, device: torch.device, dtype: torch.dtype, merge: bool, tokenizer) -> engine.Components:
    from peft import LoraConfig, get_peft_model
    from transformers import MistralConfig, MistralForCausalLM

    _, imagebind_model = import_imagebind()
    torch.manual_seed(0)
    with torch.device(device):
        lm = MistralForCausalLM(MistralConfig(**(MISTRAL_7B if shape == "7b" else TINY_LM))).to(dtype)
        lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        lm = get_peft_model(lm, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                           modules_to_save=["embed_tokens", "lm_head"], task_type="CAUSAL_LM"))  # fmt: skip
        if merge:
            lm = lm.merge_and_unload()
        encoder_model = imagebind_model.imagebind_huge() if shape == "7b" else imagebind_model.ImageBindModel(**TINY_IMAGEBIND)
        enc_dim = 1024 if shape == "7b" else TINY_IMAGEBIND["out_embed_dim"]
        hidden = lm.config.hidden_size
        projector = torch.nn.ModuleDict({m: ModalityAdapter(enc_dim, hidden, 4 * hidden) for m in MODALITIES})
    return engine.Components(
        tokenizer=tokenizer, lm=lm.eval(), projector=projector.to(dtype).eval(),
        encoder=MediaEncoder(encoder_model.eval(), device, torch.float32),
        cache=FeatureCache("bench"), media_token_ids={"image": 32006, "audio": 32007}, eos_id=32001, pad_id=0,
        lm_hidden=hidden, device=device, dtype=dtype, system_prompt=NOTEBOOK_SYSTEM_PROMPT,
    )  # fmt: skip


def timed_encoder(c: engine.Components) -> dict:
    """Accumulate the wall time spent turning media into projected vectors (preprocessing + ImageBind)."""
    spent = {"seconds": 0.0}
    original = engine.media_vectors

    def wrapped(*args, **kw):
        t0 = time.perf_counter()
        try:
            return original(*args, **kw)
        finally:
            sync(c.device)
            spent["seconds"] += time.perf_counter() - t0

    engine.media_vectors = wrapped
    spent["restore"] = lambda: setattr(engine, "media_vectors", original)
    return spent


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_pass(c: engine.Components, work: list[Request], batch_size: int, new_tokens: int, fresh_cache_per_item: bool,
             sort_by_cost: bool = True):  # fmt: skip
    """The engine functions driven directly (naive: batch 1 and a fresh feature cache per item)."""
    spent = timed_encoder(c)
    if c.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(c.device)
    sync(c.device)
    t0 = time.perf_counter()
    prepared = [engine.prepare(c, r) for r in work]
    outputs = [None] * len(work)
    batches = (engine.by_cost(prepared, batch_size) if sort_by_cost
               else [list(range(i, min(i + batch_size, len(work)))) for i in range(0, len(work), batch_size)])  # fmt: skip
    for batch in batches:
        if fresh_cache_per_item:
            c.cache = FeatureCache("naive")  # the released code encodes every image every time
        texts = engine.generate(c, [prepared[i] for i in batch], new_tokens, min_new_tokens=new_tokens)
        for i, text in zip(batch, texts):
            outputs[i] = text
    sync(c.device)
    total = time.perf_counter() - t0
    spent.pop("restore")()
    return measured(c, len(work), total, spent), outputs


def measured(c: engine.Components, items: int, total: float, spent: dict, **extra) -> dict:
    peak = torch.cuda.max_memory_allocated(c.device) / 2**30 if c.device.type == "cuda" else None
    return {"items": items, "seconds": round(total, 3), "items_per_s": round(items / total, 3),
            "encoder_seconds": round(spent["seconds"], 3), "peak_gpu_gib": peak and round(peak, 2), **extra}  # fmt: skip


def in_memory_model(c: engine.Components, batch_size, new_tokens: int = 32) -> S3Model:
    here = Path("in-memory")
    spec = S3Spec(checkpoint=here, base=here, tokenizer=here, adapter=here, projector=here, imagebind=here,
                  max_new_tokens=new_tokens)  # fmt: skip
    return S3Model.from_components(c, spec, batch_size)


def runner_pass(c: engine.Components, work: list[Request], batch_size, window: int, new_tokens: int):
    """``S3Model`` through the runner's ``generate_all``, as ``s3eval run`` drives it: media hashed, requests
    keyed, the whole task handed over, GPU batches formed by the backend, every batch fsynced to a response log."""
    c.cache = FeatureCache("runner")  # cold, as the engine's first pass
    model = in_memory_model(c, batch_size, new_tokens)
    options = dict(c.generate_options)
    c.generate_options = {**options, "min_new_tokens": new_tokens}  # the same work as the other passes
    spent = timed_encoder(c)
    fsyncs = {"n": 0}
    if c.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(c.device)
    with tempfile.TemporaryDirectory() as run_dir:
        log = ResponseLog(Path(run_dir))
        append = log.append

        def counted(entries):
            fsyncs["n"] += 1
            append(entries)

        log.append = counted
        sync(c.device)
        t0 = time.perf_counter()
        pending = []
        for r in work:
            record = Record(task=r.task, sample_id=r.sample_id, answer_type="choice", choices=[], gold=None, groups={})
            record.media_hashes = [m.content_hash() for m in r.media]
            pending.append(Pending(record, replace(r, max_new_tokens=new_tokens, candidates=())))
        records = {p.record.sample_id: p.record for p in pending}
        config = RunConfig(tasks=[TaskSpec("bench")], batch_size=batch_size, window=window)
        generate_all(model, "bench", pending, records, config, log, "bench", False, False)
        sync(c.device)
        total = time.perf_counter() - t0
    spent.pop("restore")()
    c.generate_options = options
    stats = {"gpu_batches": fsyncs["n"], "backoffs": model.backoffs, "errors": sum(p.record.error is not None for p in pending),
             "token_budget": model.token_budget if model.auto else None}  # fmt: skip
    return measured(c, len(work), total, spent, **stats), [p.record.response for p in pending]


def likelihood_pass(c: engine.Components, work: list[Request], candidates: int) -> dict:
    """Choice ranking by likelihood, each item's options cycled to ``candidates``, with and without the shared
    prompt, in one process; warm feature cache for both, so the comparison is the language model's work."""
    jobs = []
    for r in work:
        options = list(r.candidates)
        texts = [options[k % len(options)] + ("" if k < len(options) else f" ({k})") for k in range(candidates)]
        jobs += [LikelihoodRequest(r, text) for text in texts]
    model = in_memory_model(c, "auto")
    model.loglikelihood(jobs[: 2 * candidates])  # warm-up (first-call allocations)
    c.cache = FeatureCache("likelihood")
    model.loglikelihood(jobs)  # every image encoded once, for both passes
    times, results = {}, {}
    for shared in (False, True) * 3:  # interleaved, best of three: less sensitive to a busy machine
        model.shared_prefix = shared
        sync(c.device)
        t0 = time.perf_counter()
        results[shared] = model.loglikelihood(jobs)
        sync(c.device)
        times[shared] = min(times.get(shared, float("inf")), time.perf_counter() - t0)
    model.shared_prefix = True
    diff = max(abs(a.logprob - b.logprob) for a, b in zip(results[True], results[False]))
    nll = max(abs(a.mean_nll - b.mean_nll) for a, b in zip(results[True], results[False]))
    return {"candidates": candidates, "items": len(work), "scored": len(jobs),
            "full_forward_s": round(times[False], 3), "shared_prefix_s": round(times[True], 3),
            "speedup": round(times[False] / times[True], 2), "max_abs_logprob_diff": diff,
            "max_abs_mean_nll_diff": nll, "dtype": str(c.dtype).replace("torch.", "")}  # fmt: skip


def dtype_check(args, device, tokenizer, work: list[Request], new_tokens: int) -> dict:
    """bfloat16 against float32 (same random weights, LoRA merged, the engine's batches): greedy answers that
    differ, and likelihood rankings (lowest mean NLL among an item's options) that flip."""
    out = {}
    for name in ("float32", "bfloat16"):
        c = build(args.shape, device, DTYPES[name], merge=True, tokenizer=tokenizer)
        _, texts = run_pass(c, work, args.batch_size, new_tokens, fresh_cache_per_item=False)
        model = in_memory_model(c, "auto")
        jobs = [(i, LikelihoodRequest(r, text)) for i, r in enumerate(work) for text in r.candidates]
        scores = model.loglikelihood([job for _, job in jobs])
        best: dict[int, tuple[float, int]] = {}
        for k, ((i, _), s) in enumerate(zip(jobs, scores)):
            best[i] = min(best.get(i, (float("inf"), k)), (s.mean_nll, k))
        out[name] = (texts, [best[i][1] for i in range(len(work))], [s.mean_nll for s in scores])
        del c, model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    (a_texts, a_rank, a_nll), (b_texts, b_rank, b_nll) = out["float32"], out["bfloat16"]
    return {"items": len(work), "new_tokens": new_tokens,
            "answer_flips": sum(x != y for x, y in zip(a_texts, b_texts)),
            "ranking_flips": sum(x != y for x, y in zip(a_rank, b_rank)),
            "max_abs_mean_nll_diff": round(max(abs(x - y) for x, y in zip(a_nll, b_nll)), 5)}  # fmt: skip


def hardware_limit(c: engine.Components, work: list[Request], new_tokens: int, batch_size: int, gpu: str):
    if gpu not in HARDWARE:
        return None
    peak_flops, bandwidth = HARDWARE[gpu]
    lm_params = sum(p.numel() for p in c.lm.parameters())
    enc_params = sum(p.numel() for p in c.encoder.model.parameters())
    prompt_tokens = sum(len(engine.prepare(c, r).ids) for r in work)
    images = sum(len(r.media) for r in work)
    prefill = 2 * lm_params * (prompt_tokens + len(work) * new_tokens) + 2 * 0.52 * enc_params * 257 * images
    decode_steps = -(-len(work) // batch_size) * new_tokens
    weight_bytes = lm_params * torch.finfo(c.dtype).bits // 8
    seconds = prefill / peak_flops + decode_steps * weight_bytes / bandwidth
    return {"seconds": round(seconds, 3), "prefill_flops": prefill, "decode_steps": decode_steps,
            "assumes": f"{gpu}: {peak_flops/1e12:.0f} TFLOP/s bf16 dense, {bandwidth/1e12:.2f} TB/s; vision branch "
                       "≈ 52% of ImageBind parameters at 257 tokens per image"}  # fmt: skip


def batch_size_arg(value: str):
    return value if value == "auto" else int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["7b", "tiny"], default="tiny")
    parser.add_argument("--device", help="torch device (default cuda if available, else cpu)")
    parser.add_argument("--items", type=int, default=900)
    parser.add_argument("--naive-items", type=int, help="measure the naive path on the first N items only")
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--batch-size", type=int, default=64, help="the bare engine's batch (requests)")
    parser.add_argument("--runner-batch-size", type=batch_size_arg, default="auto",
                        help="the runner path's --batch-size: N or auto (default auto)")
    parser.add_argument("--window", type=int, default=4096, help="the runner path's --window (default 4096)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="engine dtype (default bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--naive-dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--likelihood-candidates", type=int, nargs="*", default=[4, 8],
                        help="candidates per item for the shared-prefix likelihood comparison (none: skip it)")
    parser.add_argument("--likelihood-items", type=int,
                        help="items of the likelihood comparison (default: 90, at most --items)")
    parser.add_argument("--flip-items", type=int, help="items of the bf16 vs fp32 comparison (default: 90, at most "
                        "--items)")
    parser.add_argument("--no-dtype-check", action="store_true", help="skip the bf16 vs fp32 comparison")
    parser.add_argument("--static-cache", action="store_true", help="also run the engine with a static KV cache")
    parser.add_argument("--compile", action="store_true",
                        help="also run the engine with torch.compile'd forward (with the static cache if given)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--ablation", action="store_true",
                        help="also measure the engine with one change undone at a time (cost sort, LoRA merge, "
                        "batching, bf16 on GPU), on the first --naive-items items")
    args = parser.parse_args()
    args.likelihood_items = args.likelihood_items or min(90, args.items)
    args.flip_items = args.flip_items or min(90, args.items)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    gpu_kind = next((k for k in HARDWARE if gpu and k in gpu), None)
    engine_dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    with tempfile.TemporaryDirectory() as tmp:
        build_tokenizer(Path(tmp))
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=False)
    work = mmmu_work(args.items)
    naive_work = work[: args.naive_items] if args.naive_items else work
    report = {"device": gpu or f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
              "shape": args.shape, "items": args.items, "naive_items": len(naive_work),
              "work": "../shared/mmmu_mini (90 real items, all referenced images) cycled; copies' image bytes made "
                      "distinct; every pass's time includes tokenisation",
              "naive": {"batch_size": 1, "feature_cache": False, "lora": "unmerged", "dtype": args.naive_dtype},
              "engine": {"batch_size": args.batch_size, "feature_cache": True, "lora": "merged", "dtype": engine_dtype,
                         "batches": "cost-sorted (text tokens + 4 per image)"},
              "runner": {"batch_size": args.runner_batch_size, "window": args.window, "feature_cache": True,
                         "lora": "merged", "dtype": engine_dtype,
                         "path": "S3Model via generation.generate_all: media hashing, response keys, the backend's "
                                 "token-budget batches, media look-ahead, response log fsynced per GPU batch"},
              "command": "python bench/throughput.py " + " ".join(sys.argv[1:]), "runs": []}  # fmt: skip
    engine_c = None
    for new_tokens in args.new_tokens:
        naive_c = build(args.shape, device, DTYPES[args.naive_dtype], merge=False, tokenizer=tokenizer)
        naive, naive_out = run_pass(naive_c, naive_work, 1, new_tokens, fresh_cache_per_item=True)
        del naive_c
        if device.type == "cuda":
            torch.cuda.empty_cache()
        engine_c = build(args.shape, device, DTYPES[engine_dtype], merge=True, tokenizer=tokenizer)
        fast, fast_out = run_pass(engine_c, work, args.batch_size, new_tokens, fresh_cache_per_item=False)
        warm, _ = run_pass(engine_c, work, args.batch_size, new_tokens, fresh_cache_per_item=False)
        runner, runner_out = runner_pass(engine_c, work, args.runner_batch_size, args.window, new_tokens)
        limit = hardware_limit(engine_c, work, new_tokens, args.batch_size, gpu_kind)
        same = sum(a == b for a, b in zip(naive_out, fast_out))
        entry = {"new_tokens": new_tokens, "naive": naive, "engine": fast, "engine_warm_cache": warm, "runner": runner,
                 "speedup": round(fast["items_per_s"] / naive["items_per_s"], 2),
                 "runner_speedup": round(runner["items_per_s"] / naive["items_per_s"], 2),
                 "runner_vs_engine": round(runner["items_per_s"] / fast["items_per_s"], 2),
                 # Merged LoRA and another dtype change the numerics, so a few greedy outputs may differ.
                 "identical_outputs": f"{same}/{len(naive_out)}",
                 "runner_identical_to_engine": f"{sum(a == b for a, b in zip(fast_out, runner_out))}/{len(work)}",
                 "hardware_limit": limit,
                 "fraction_of_limit": limit and round(limit["seconds"] / fast["seconds"], 3)}  # fmt: skip
        entry["options"] = options(args, engine_c, work, new_tokens, fast_out)
        if args.ablation:
            entry["ablation"] = ablation(args, device, engine_dtype, tokenizer, naive_work, new_tokens, engine_c)
        report["runs"].append(entry)
        print(json.dumps(entry, indent=1))
    if engine_c is not None:
        report["likelihood"] = [likelihood_pass(engine_c, work[: args.likelihood_items], n)
                                for n in args.likelihood_candidates]  # fmt: skip
        print(json.dumps(report["likelihood"], indent=1))
        del engine_c
    if not args.no_dtype_check:
        report["dtypes"] = dtype_check(args, device, tokenizer, work[: args.flip_items], args.new_tokens[0])
        print(json.dumps(report["dtypes"], indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{(gpu_kind or gpu or device.type).replace(' ', '_')}-{args.shape}"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(markdown(report))
    print(f"wrote {args.out / name}.json and .md")


def options(args, c: engine.Components, work: list[Request], new_tokens: int, reference: list) -> dict:
    """The engine again with a static KV cache and/or a compiled forward (cold feature cache), if asked for."""
    out = {}
    saved_options, saved_forward = dict(c.generate_options), c.lm.forward
    if args.static_cache:
        c.generate_options = {**saved_options, "cache_implementation": "static"}
        c.cache = FeatureCache("static")
        result, texts = run_pass(c, work, args.batch_size, new_tokens, fresh_cache_per_item=False)
        out["static_cache"] = {**result, "identical_to_engine": f"{sum(a == b for a, b in zip(texts, reference))}/{len(work)}"}
    if args.compile:
        c.lm.forward = torch.compile(saved_forward, dynamic=True)
        c.cache = FeatureCache("compile")
        run_pass(c, work[: args.batch_size], args.batch_size, new_tokens, fresh_cache_per_item=False)  # compiles
        c.cache = FeatureCache("compile")
        result, texts = run_pass(c, work, args.batch_size, new_tokens, fresh_cache_per_item=False)
        label = "compile" + ("+static_cache" if args.static_cache else "")
        out[label] = {**result, "identical_to_engine": f"{sum(a == b for a, b in zip(texts, reference))}/{len(work)}"}
    c.generate_options, c.lm.forward = saved_options, saved_forward
    return out


def ablation(args, device, engine_dtype, tokenizer, work, new_tokens, engine_c) -> dict:
    """items/s of the full engine and of the engine with each change undone on its own (cold feature cache)."""
    def measure(c, **kw):
        c.cache = FeatureCache("ablation")
        return run_pass(c, work, kw.pop("batch_size", args.batch_size), new_tokens, False, **kw)[0]["items_per_s"]

    out = {"items": len(work), "engine": measure(engine_c), "without cost sort": measure(engine_c, sort_by_cost=False),
           "without batching (batch 1)": measure(engine_c, batch_size=1)}  # fmt: skip
    unmerged = build(args.shape, device, DTYPES[engine_dtype], merge=False, tokenizer=tokenizer)
    out["without LoRA merge"] = measure(unmerged)
    del unmerged
    if engine_dtype != "float32":
        fp32 = build(args.shape, device, torch.float32, merge=True, tokenizer=tokenizer)
        out["without bf16 (fp32)"] = measure(fp32)
    return out


def markdown(report: dict) -> str:
    lines = [f"# S³ throughput, {report['shape']} shapes, {report['device']}", "",
             f"Work: {report['items']} items — {report['work']}. Naive measured on {report['naive_items']} items.",
             f"Naive (baseline): {report['naive']}. Engine: {report['engine']}.",
             f"Runner: {report.get('runner')}.", "",
             "| new tokens | naive items/s | engine items/s | speed-up | runner items/s | runner speed-up | runner ÷ engine | engine s | warm-cache s | runner s | encoder s (cold → warm) | GPU batches (runner) | peak GiB | limit s | fraction of limit | same outputs (naive, runner) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["runs"]:
        limit, runner = r["hardware_limit"], r.get("runner", {})
        lines.append(
            f"| {r['new_tokens']} | {r['naive']['items_per_s']} | {r['engine']['items_per_s']} | {r['speedup']}× | "
            f"{runner.get('items_per_s', '-')} | {r.get('runner_speedup', '-')}× | {r.get('runner_vs_engine', '-')} | "
            f"{r['engine']['seconds']} | {r['engine_warm_cache']['seconds']} | {runner.get('seconds', '-')} | "
            f"{r['engine']['encoder_seconds']} → {r['engine_warm_cache']['encoder_seconds']} | "
            f"{runner.get('gpu_batches', '-')} | {r['engine']['peak_gpu_gib'] or '-'} | "
            f"{limit['seconds'] if limit else '-'} | {r['fraction_of_limit'] or '-'} | "
            f"{r['identical_outputs']}, {r.get('runner_identical_to_engine', '-')} |"
        )
    for r in report["runs"]:
        for name, option in r.get("options", {}).items():
            lines.append(f"\nOption {name}, {r['new_tokens']} new tokens: {option['items_per_s']} items/s "
                         f"({option['seconds']} s), same outputs as the engine {option['identical_to_engine']}.")
        if "ablation" in r:
            lines += ["", f"Ablation, {r['new_tokens']} new tokens, {r['ablation']['items']} items (items/s):", ""]
            lines += [f"- {name}: {value}" for name, value in r["ablation"].items() if name != "items"]
    if report.get("likelihood"):
        lines += ["", "Likelihood (choice ranking), one full forward per candidate vs the shared prompt "
                  "(its key/value cache reused per candidate), same process, interleaved, best of three each:", "",
                  "| candidates | items | scored | full forward s | shared prefix s | speed-up | max abs Δ logprob | max abs Δ mean NLL |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for x in report["likelihood"]:
            lines.append(f"| {x['candidates']} | {x['items']} | {x['scored']} | {x['full_forward_s']} | "
                         f"{x['shared_prefix_s']} | {x['speedup']}× | {x['max_abs_logprob_diff']:.2e} | "
                         f"{x['max_abs_mean_nll_diff']:.2e} |")  # fmt: skip
    if report.get("dtypes"):
        d = report["dtypes"]
        lines += ["", f"bfloat16 vs float32 (same weights), {d['items']} items, {d['new_tokens']} new tokens: "
                  f"{d['answer_flips']} greedy answers differ, {d['ranking_flips']} likelihood rankings flip, "
                  f"max |Δ mean NLL| {d['max_abs_mean_nll_diff']}."]  # fmt: skip
    lines += ["", f"Re-run: `{report['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
