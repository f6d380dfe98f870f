"""MMMU-validation-shaped throughput of the S³ engine against the released code's way of running it.

Builds an S³ with random weights in memory — ``--shape 7b``: exact Mistral-7B-v0.1 shapes (vocab 32008 after
resizing, LoRA r = 8 on q/v with full embed_tokens/lm_head copies), ImageBind-huge and the real projector shapes;
``--shape tiny``: the test release's shapes, for CPU evidence in CI time. Throughput does not depend on weight
values; random weights never stop early, so every item generates exactly ``--new-tokens`` tokens.

Work: the 90 real items of ../shared/mmmu_mini (official prompts, all referenced images) cycled to ``--items``
(900 = MMMU validation). Cycled copies get distinct image bytes (zero bytes appended after the PNG end, pixels
unchanged) so the feature cache cannot profit from the repetition.

Side by side in one process:
- naive — the released code's way: batch size 1, no feature cache, LoRA unmerged, fp32 (``--naive-dtype``);
  optionally on the first ``--naive-items`` items only (its items/s is what is compared);
- engine — s3eval: cost-sorted batches of ``--batch-size``, the feature cache, LoRA merged, ``--dtype``;
- engine, second pass — the same work again with the feature cache warm (encoder time ≈ 0).

    python bench/throughput.py --shape tiny --items 180 --new-tokens 8
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

from s3eval.models.s3 import engine  # noqa: E402
from s3eval.models.s3.builder import TINY_IMAGEBIND, TINY_LM, build_tokenizer  # noqa: E402
from s3eval.models.s3.encoders import MediaEncoder, import_imagebind  # noqa: E402
from s3eval.models.s3.feature_cache import FeatureCache  # noqa: E402
from s3eval.models.s3.projector import MODALITIES, ModalityAdapter  # noqa: E402
from s3eval.models.s3.prompt import NOTEBOOK_SYSTEM_PROMPT  # noqa: E402
from s3eval.task import TaskOptions  # noqa: E402
from s3eval.task_registry import build_task  # noqa: E402
from s3eval.types import Request  # noqa: E402

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
    base = [task.build_request(s) for s in task.samples()]
    work = []
    for i in range(items):
        r, copy = base[i % len(base)], i // len(base)
        media = tuple(replace(m, data=m.read_bytes() + b"\0" * copy) for m in r.media)
        work.append(Request(r.task, f"{r.sample_id}#{copy}", r.prompt, media))
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
    prepared = [engine.prepare(c, r) for r in work]
    spent = timed_encoder(c)
    if c.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(c.device)
    sync(c.device)
    t0 = time.perf_counter()
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
    peak = torch.cuda.max_memory_allocated(c.device) / 2**30 if c.device.type == "cuda" else None
    return {"items": len(work), "seconds": round(total, 3), "items_per_s": round(len(work) / total, 3),
            "encoder_seconds": round(spent["seconds"], 3), "peak_gpu_gib": peak and round(peak, 2)}, outputs


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["7b", "tiny"], default="tiny")
    parser.add_argument("--items", type=int, default=900)
    parser.add_argument("--naive-items", type=int, help="measure the naive path on the first N items only")
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dtype", choices=list(DTYPES), help="engine dtype (default bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--naive-dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--ablation", action="store_true",
                        help="also measure the engine with one change undone at a time (cost sort, LoRA merge, "
                        "batching, bf16 on GPU), on the first --naive-items items")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
              "work": "../shared/mmmu_mini (90 real items, all referenced images) cycled; copies' image bytes made distinct",
              "naive": {"batch_size": 1, "feature_cache": False, "lora": "unmerged", "dtype": args.naive_dtype},
              "engine": {"batch_size": args.batch_size, "feature_cache": True, "lora": "merged", "dtype": engine_dtype,
                         "batches": "cost-sorted (text tokens + 4 per image)"},
              "command": "python bench/throughput.py " + " ".join(sys.argv[1:]), "runs": []}  # fmt: skip
    for new_tokens in args.new_tokens:
        naive_c = build(args.shape, device, DTYPES[args.naive_dtype], merge=False, tokenizer=tokenizer)
        naive, naive_out = run_pass(naive_c, naive_work, 1, new_tokens, fresh_cache_per_item=True)
        del naive_c
        if device.type == "cuda":
            torch.cuda.empty_cache()
        engine_c = build(args.shape, device, DTYPES[engine_dtype], merge=True, tokenizer=tokenizer)
        fast, fast_out = run_pass(engine_c, work, args.batch_size, new_tokens, fresh_cache_per_item=False)
        warm, _ = run_pass(engine_c, work, args.batch_size, new_tokens, fresh_cache_per_item=False)
        limit = hardware_limit(engine_c, work, new_tokens, args.batch_size, gpu_kind)
        same = sum(a == b for a, b in zip(naive_out, fast_out))
        entry = {"new_tokens": new_tokens, "naive": naive, "engine": fast, "engine_warm_cache": warm,
                 "speedup": round(fast["items_per_s"] / naive["items_per_s"], 2),
                 # Merged LoRA and another dtype change the numerics, so a few greedy outputs may differ.
                 "identical_outputs": f"{same}/{len(naive_out)}",
                 "hardware_limit": limit,
                 "fraction_of_limit": limit and round(limit["seconds"] / fast["seconds"], 3)}  # fmt: skip
        if args.ablation:
            entry["ablation"] = ablation(args, device, engine_dtype, tokenizer, naive_work, new_tokens, engine_c)
        report["runs"].append(entry)
        print(json.dumps(entry, indent=1))
        del engine_c
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{(gpu_kind or gpu or 'cpu').replace(' ', '_')}-{args.shape}"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(markdown(report))
    print(f"wrote {args.out / name}.json and .md")


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
             f"Naive: {report['naive']}. Engine: {report['engine']}.", "",
             "| new tokens | naive items/s | engine items/s | speed-up | engine s | warm-cache s | encoder s (cold → warm) | peak GiB | limit s | fraction of limit | same outputs |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["runs"]:
        limit = r["hardware_limit"]
        lines.append(
            f"| {r['new_tokens']} | {r['naive']['items_per_s']} | {r['engine']['items_per_s']} | {r['speedup']}× | "
            f"{r['engine']['seconds']} | {r['engine_warm_cache']['seconds']} | {r['engine']['encoder_seconds']} → "
            f"{r['engine_warm_cache']['encoder_seconds']} | {r['engine']['peak_gpu_gib'] or '-'} | "
            f"{limit['seconds'] if limit else '-'} | {r['fraction_of_limit'] or '-'} | {r['identical_outputs']} |"
        )
    for r in report["runs"]:
        if "ablation" in r:
            lines += ["", f"Ablation, {r['new_tokens']} new tokens, {r['ablation']['items']} items (items/s):", ""]
            lines += [f"- {name}: {value}" for name, value in r["ablation"].items() if name != "items"]
    lines += ["", f"Re-run: `{report['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
