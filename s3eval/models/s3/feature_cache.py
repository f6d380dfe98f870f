"""ImageBind features keyed by media content hash + encoder identity: each unique media item is encoded once per
run, and, with a cache folder, once ever — a repeated run encodes nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import torch


class FeatureCache:
    def __init__(self, encoder_id: str, directory: Optional[Path] = None) -> None:
        self.encoder_id = encoder_id
        self.directory = Path(directory) / encoder_id[:32] if directory else None
        self._memory: dict[str, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def _path(self, media_hash: str) -> Optional[Path]:
        return self.directory / f"{media_hash}.safetensors" if self.directory else None

    def contains(self, media_hash: str) -> bool:
        """Whether ``get`` would find it (not counted as a hit or miss)."""
        path = self._path(media_hash)
        return media_hash in self._memory or (path is not None and path.is_file())

    def get(self, media_hash: str) -> Optional[torch.Tensor]:
        found = self._memory.get(media_hash)
        path = self._path(media_hash)
        if found is None and path is not None and path.is_file():
            from safetensors.torch import load_file

            try:
                found = load_file(str(path))["features"]
            except Exception:  # a torn or foreign file is a miss; it is rewritten below
                found = None
            if found is not None:
                self._memory[media_hash] = found
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, media_hash: str, features: torch.Tensor) -> None:
        features = features.detach().to("cpu", torch.float32).contiguous()
        self._memory[media_hash] = features
        path = self._path(media_hash)
        if path is None:
            return
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file({"features": features}, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
