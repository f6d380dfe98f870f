"""The tiny-release builder and the end-to-end run through the CLI (its timing: bench/end_to_end.py)."""

import hashlib
import json

from s3eval import leaderboard
from s3eval.cli import main
from s3eval.models.s3 import builder
from s3eval.models.s3.builder import build_tiny_release, ensure_builtin, ensure_release


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_builder_is_deterministic_and_in_the_released_layout(tiny_release, tmp_path):
    checkpoint, base = tiny_release  # from the suite's cache: also checks that nothing changed the cached files
    again, again_base = build_tiny_release(tmp_path / "again", seed=0)
    assert digest(checkpoint) == digest(again) and digest(base) == digest(again_base)
    assert set(digest(checkpoint)) == {
        "tokenizer/tokenizer.model", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
        "tokenizer/added_tokens.json", "language_model/adapter_config.json",
        "language_model/adapter_model.safetensors", "projections/modality_adapters.pt",
        "imagebind/imagebing_huge.pth", "imagebind/imagebind_config.json",
    }  # fmt: skip
    assert {"config.json", "model.safetensors"} <= set(digest(base))
    other, _ = build_tiny_release(tmp_path / "other", seed=1)
    assert digest(other)["projections/modality_adapters.pt"] != digest(checkpoint)["projections/modality_adapters.pt"]


def test_ensure_release_builds_once_into_a_given_folder(tmp_path):
    calls = []

    def build(folder):  # a stand-in for build_tiny_release: the mechanics, not the weights
        calls.append(folder)
        (folder / "s3").mkdir()
        (folder / "base").mkdir()
        (folder / builder.COMPLETE_MARK).write_text("{}")

    release = (tmp_path / "builtin" / "s3", tmp_path / "builtin" / "base")
    assert ensure_release(tmp_path / "builtin", build) == release
    assert ensure_release(tmp_path / "builtin", build) == release and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["builtin"]  # no temporary folder left


def test_builtin_tiny_comes_from_the_cache(tiny_release):
    from s3eval import cache
    from s3eval.models.s3.spec import resolve_builtin

    checkpoint, base = tiny_release
    folder = checkpoint.parent
    assert folder == cache.cache_root() / "releases" / f"tiny-{builder.cache_entry(0).key()}"
    assert base == folder / "base" and cache.is_complete(folder)
    stamp = (checkpoint / "projections" / "modality_adapters.pt").stat().st_mtime_ns
    assert ensure_builtin() == resolve_builtin("builtin:tiny") == (checkpoint, base)  # found, not rebuilt
    assert (checkpoint / "projections" / "modality_adapters.pt").stat().st_mtime_ns == stamp


def test_end_to_end_on_mmmu_mini(tiny_release, mmmu_mini, tmp_path, capsys):
    checkpoint, base = tiny_release
    code = main(["run", "--model", "s3", "--checkpoint", str(checkpoint), "--base", str(base), "--tasks", "mmmu_val",
                 "--data", str(mmmu_mini), "--output-dir", str(tmp_path / "runs"), "--leaderboard",
                 str(tmp_path / "lb.csv"), "--run-name", "tiny", "--batch-size", "16", "--quiet"])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert results["model"]["name"] == "s3" and results["model"]["details"]["dtype"] == "float32"
    overall = results["tasks"]["mmmu_val"]["summary"]["overall"]
    assert overall["n"] == 90 and overall["n_error"] == 0
    row = leaderboard.read(tmp_path / "lb.csv").iloc[0]
    assert row["model"] == "s3" and row["checkpoint"] == str(checkpoint) and len(row["checkpoint_hash"]) == 64
    assert "mmmu_val: accuracy" in capsys.readouterr().out


def test_corrupt_image_in_a_run_is_a_recorded_error(tiny_release, tmp_path):
    from s3eval.config import RunConfig, TaskSpec
    from s3eval.runner import run
    from s3eval.storage import read_jsonl

    from mmmu_snapshot import png, row, write_snapshot

    data = write_snapshot(tmp_path / "snap", [
        row("validation_Art_1"), row("validation_Art_2", images={1: png()[:40]}), row("validation_Art_3"),
    ])  # fmt: skip
    checkpoint, base = tiny_release
    config = RunConfig(model="s3", model_args={"checkpoint": str(checkpoint), "base": str(base)},
                       tasks=[TaskSpec("mmmu_val", {"subjects": "Art"})], data=str(data),
                       output_dir=str(tmp_path / "runs"), leaderboard=None)  # fmt: skip
    outcome = run(config, show_progress=False)
    records = list(read_jsonl(outcome.run_dir / "samples_mmmu_val.jsonl"))
    assert [r["error_kind"] for r in records] == [None, "media", None]
    assert records[1]["error"].startswith("image_1 (bytes): cannot decode image") and records[1]["correct"] is False
    assert outcome.results["tasks"]["mmmu_val"]["summary"]["overall"]["n_error"] == 1
