"""Builds small MMMU snapshots in the real hub layout (``<Subject>/<split>-00000-of-00001.parquet`` with the
`MMMU/MMMU` features) from rows given in tests, and Hugging Face datasets caches in the layout that
``load_dataset("MMMU/MMMU", subject)`` reads offline."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any, Optional

import datasets
from PIL import Image

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "question": datasets.Value("string"),
        "options": datasets.Value("string"),
        "explanation": datasets.Value("string"),
        **{f"image_{k}": datasets.Image() for k in range(1, 8)},
        "img_type": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "topic_difficulty": datasets.Value("string"),
        "question_type": datasets.Value("string"),
        "subfield": datasets.Value("string"),
    }
)


def png(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def row(
    sample_id: str,
    question: str = "<image 1> What is shown?",
    options: str = "['cat', 'dog', 'bird', 'fish']",
    answer: str = "A",
    question_type: str = "multiple-choice",
    images: Optional[dict[int, bytes]] = None,
) -> dict[str, Any]:
    images = {1: png()} if images is None else images
    out = {
        "id": sample_id, "question": question, "options": options, "explanation": "", "img_type": "['Photos']",
        "answer": answer, "topic_difficulty": "Easy", "question_type": question_type, "subfield": "",
    }  # fmt: skip
    for k in range(1, 8):
        out[f"image_{k}"] = {"bytes": images[k], "path": f"{sample_id}_{k}.png"} if k in images else None
    return out


def write_snapshot(root: Path, rows: list[dict[str, Any]], split: str = "validation") -> Path:
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        subject = "_".join(r["id"].split("_")[1:-1])
        by_subject.setdefault(subject, []).append(r)
    for subject, subject_rows in by_subject.items():
        folder = root / subject
        folder.mkdir(parents=True, exist_ok=True)
        columns = {name: [r[name] for r in subject_rows] for name in FEATURES}
        datasets.Dataset.from_dict(columns, features=FEATURES).to_parquet(folder / f"{split}-00000-of-00001.parquet")
    return root


def write_hub_cache(snapshot: Path, cache_dir: Path, subjects: list[str], split: str = "validation") -> Path:
    """Lay the snapshot's subjects out as `datasets` caches a hub download of MMMU/MMMU:
    ``<cache>/MMMU___mmmu/<Subject>/0.0.0/<hash>/{mmmu-<split>.arrow, dataset_info.json}``."""
    work = cache_dir / "_build"
    for subject in subjects:
        files = sorted(str(p) for p in (snapshot / subject).glob(f"{split}-*.parquet"))
        datasets.load_dataset("parquet", data_files={split: files}, split=split, cache_dir=str(work))
        built = next(p.parent for p in work.rglob("dataset_info.json"))
        target = cache_dir / "MMMU___mmmu" / subject / "0.0.0" / "0000000000000000"
        target.mkdir(parents=True)
        shutil.copy(next(built.glob(f"*-{split}.arrow")), target / f"mmmu-{split}.arrow")
        info = json.loads((built / "dataset_info.json").read_text())
        info.update(dataset_name="mmmu", config_name=subject)
        (target / "dataset_info.json").write_text(json.dumps(info))
        shutil.rmtree(work)
    return cache_dir
