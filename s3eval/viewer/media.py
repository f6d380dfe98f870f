"""The viewer's media: every image and audio clip copied once into the folder, named by the SHA-256 of its bytes
with the extension its content shows, and a request's replica as the page renders it (text and media in order)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Optional

from ..types import Media, Request, sha256_hex

_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
                (b"BM", "bmp"))  # fmt: skip
_AUDIO_MAGIC = ((b"fLaC", "flac"), (b"OggS", "ogg"), (b"ID3", "mp3"), (b"\xff\xfb", "mp3"), (b"\xff\xf3", "mp3"),
                (b"\xff\xf2", "mp3"))  # fmt: skip


def media_extension(kind: str, data: bytes) -> Optional[str]:
    """The file extension a browser plays or shows ``data`` under; None for a format it does not know."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WAVE", b"WEBP"):
        return "wav" if data[8:12] == b"WAVE" else "webp"
    if data[4:8] == b"ftyp" and kind == "audio":
        return "m4a"
    for magic, ext in _IMAGE_MAGIC if kind == "image" else _AUDIO_MAGIC:
        if data.startswith(magic):
            return ext
    return None


class MediaStore:
    """Copies each medium once into ``root`` as ``<sha256>.<ext>``; describes it for the page."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Optional[str]] = {}  # sha256 -> file name under media/ (None: not viewable)
        self.notes: dict[str, str] = {}

    def add(self, media: Media) -> tuple[dict[str, Any], Optional[str]]:
        """(the part as the page shows it, the content hash; None if the bytes could not be read)."""
        part: dict[str, Any] = {"kind": media.kind, "name": media.name}
        try:
            data = media.read_bytes()
        except (OSError, ValueError) as exc:
            part["note"] = f"cannot read {media.name}: {getattr(exc, 'strerror', None) or exc}"
            return part, None
        digest = sha256_hex(data)
        if digest not in self.files:
            self.files[digest] = self._write(media.kind, data, digest)
        if self.files[digest] is not None:
            part["file"] = "media/" + self.files[digest]
        else:
            part["note"] = self.notes.get(digest, f"{media.kind} in a format the browser cannot show")
        part["sha256"] = digest
        return part, digest

    def _write(self, kind: str, data: bytes, digest: str) -> Optional[str]:
        ext = media_extension(kind, data)
        if ext is None and kind == "image":
            data, ext = _as_png(data), "png"
            if data is None:
                self.notes[digest] = "an image PIL cannot read; not shown"
                return None
        if ext is None:
            self.notes[digest] = f"{kind} in a format the browser cannot play; not copied"
            return None
        name = f"{digest}.{ext}"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_bytes(data)
        return name


def _as_png(data: bytes) -> Optional[bytes]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.convert("RGBA" if "A" in image.getbands() else "RGB").save(buffer, format="PNG")
            return buffer.getvalue()
    except Exception:  # any decoding failure: the page says the image cannot be shown
        return None


def replica_parts(request: Request, store: MediaStore) -> tuple[list[list[Any]], list[Optional[str]]]:
    """The replica as sent, in order: ``["text", str]`` or ``["media", {kind, name, file, sha256}]``."""
    parts, hashes = [], []
    for part in request.query():
        if isinstance(part, Media):
            shown, digest = store.add(part)
            parts.append(["media", shown])
            hashes.append(digest)
        else:
            parts.append(["text", part])
    return parts, hashes
