"""Frozen prompts for the 90 items of ../shared/mmmu_mini: any drift in prompt text or image selection shows
up here. The snapshot holds hashes and image names only (no third-party text). Regenerate deliberately with
``pytest tests/test_prompt_snapshots.py --update-snapshots``."""

import json
from pathlib import Path

from s3eval.task import TaskOptions
from s3eval.task_registry import build_task

SNAPSHOT = Path(__file__).parent / "snapshots" / "mmmu_mini_prompts.json"


def current(data: Path) -> dict:
    out = {}
    for name in ("mmmu_val", "mmmu_val_all_images"):
        task = build_task(name, TaskOptions(data=str(data)))
        for sample in task.samples():
            request = task.build_request(sample)
            out.setdefault(sample.id, {"prompt_sha256": request.prompt_hash})[name] = [m.name for m in request.media]
    return out


def test_prompts_match_snapshot(mmmu_mini, update_snapshots):
    got = current(mmmu_mini)
    if update_snapshots:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(SNAPSHOT.read_text())
