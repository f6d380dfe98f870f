"""What produced a result: git commit, package versions, content hashes of configs and checkpoints."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

_PACKAGES = ("s3eval", "datasets", "pandas", "numpy", "pyarrow", "torch", "transformers", "peft", "imagebind-unofficial")


def canonical_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def git_commit(directory: Path) -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=directory, capture_output=True, text=True)
    return commit + ("+dirty" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


_FINGERPRINT_FULL_BELOW = 64 << 20
_FINGERPRINT_EDGE = 8 << 20


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's content; for files of 64 MiB and more, of its size plus its first and last 8 MiB
    (multi-GB weights would otherwise take minutes to hash at every run)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode() + b"\0")
    with open(path, "rb") as handle:
        if size < _FINGERPRINT_FULL_BELOW:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(handle.read(_FINGERPRINT_EDGE))
            handle.seek(size - _FINGERPRINT_EDGE)
            digest.update(handle.read(_FINGERPRINT_EDGE))
    return digest.hexdigest()


def tree_fingerprint(paths: list[Path]) -> str:
    """Fingerprint of files and folders (every file below a folder, by relative name)."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            digest.update(f"{root.name}/{file.relative_to(root) if file != root else ''}".encode() + b"\0")
            digest.update(file_fingerprint(file).encode())
    return digest.hexdigest()
