"""Screenshots of `s3eval view` for the README, taken in a headless Chromium (Debian's package), and the size of
the viewer folder.

Two scripted runs, no weights: A — the `constant` model answering "A"; B — `replay` of made-up answers (the gold
letter for two MMMU items in three, an unparseable sentence — a parser fallback — for the others; the reference
for the first turn of each dialog, a wrong phrase after). Tasks: the 90 MMMU items of ../shared/mmmu_mini with all
referenced images (the built-in image set where ../shared is absent) and the built-in image+audio dialogs (METEOR
only, as `replay` scores no likelihoods).

    python bench/viewer_screenshots.py            # writes bench/results/viewer-{single,dialog,paired}.png

Prints the viewer folders' sizes (media, data) and the screenshots' paths.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s3eval.config import RunConfig, TaskSpec  # noqa: E402
from s3eval.runner import run  # noqa: E402
from s3eval.storage import read_jsonl  # noqa: E402
from s3eval.viewer import build_view  # noqa: E402
from s3eval.viewer.browser import Chromium  # noqa: E402
from s3eval.viewer.build import describe_size, folder_bytes  # noqa: E402

DIALOGS = "aij_builtin_dialogs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "mmmu_mini", help="MMMU snapshot")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the PNGs go")
    parser.add_argument("--work", type=Path, help="where runs and viewers go (default: a temporary folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="s3eval-viewer-"))
    mmmu = args.data.is_dir()
    first = TaskSpec("mmmu_val_all_images") if mmmu else TaskSpec("vqa_builtin_images")
    tasks = [first, TaskSpec(DIALOGS, {"proxy": "false"})]

    def go(model: str, model_args: dict, name: str) -> Path:
        config = RunConfig(model=model, model_args=model_args, tasks=tasks, data=str(args.data) if mmmu else None,
                           output_dir=str(work / "runs"), leaderboard=None, run_name=name)  # fmt: skip
        return run(config, show_progress=False).run_dir

    a = go("constant", {"answer": "A"}, "constant-A")
    answers = {}
    for i, record in enumerate(read_jsonl(a / f"samples_{first.name}.jsonl")):
        gold = record["gold"] if isinstance(record["gold"], str) else (record["gold"] or [""])[0]
        answers[record["sample_id"]] = f"The answer is ({gold})." if i % 3 != 2 else "Sorry, I cannot tell from this."
    for record in read_jsonl(a / f"samples_{DIALOGS}.jsonl"):
        turn = record["groups"].get("turn")
        answers[record["sample_id"]] = record["gold"][0] if turn == "1" else "I think it is a dog."
    (work / "answers.json").write_text(json.dumps(answers))
    b = go("replay", {"responses": str(work / "answers.json")}, "replay-B")

    single = build_view([b], work / "view-single")
    paired = build_view([a, b], work / "view-paired")
    for label, outcome in (("single", single), ("paired", paired)):
        media = folder_bytes(outcome.out / "media") if (outcome.out / "media").exists() else 0
        print(f"{label} viewer: {outcome.out}: {outcome.items} items, {outcome.media_files} media files, "
              f"{describe_size(outcome.bytes)} ({describe_size(media)} media, "
              f"{describe_size(outcome.bytes - media)} page and data)")  # fmt: skip
    mmmu_only = build_view([b], work / "view-first-task", tasks=[first.name])
    print(f"{first.name} alone: {mmmu_only.items} items, {describe_size(mmmu_only.bytes)}")

    args.out.mkdir(parents=True, exist_ok=True)
    shots = []
    with Chromium(width=1280, height=900) as browser:
        for name, outcome, fragment in (
            ("viewer-single.png", single, f"#task={first.name}"),
            ("viewer-dialog.png", single, f"#task={DIALOGS}&id=image-audio-1/3"),
            ("viewer-paired.png", paired, f"#task={first.name}"),
        ):
            browser.open((outcome.out / "index.html").resolve().as_uri() + fragment)
            browser.wait_for("document.body.getAttribute('data-ready') === '1'")
            browser.wait_for("Array.from(document.images).filter(i => i.getBoundingClientRect().top < innerHeight)"
                             ".every(i => i.complete)")  # fmt: skip
            if browser.errors:
                raise SystemExit(f"the page reported errors: {browser.errors}")
            shots.append(browser.screenshot(args.out / name))
    for shot in shots:
        print(f"wrote {shot}")


if __name__ == "__main__":
    main()
