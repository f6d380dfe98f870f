"""Structural checks of weight files: headers and sizes only, never the tensors, so that a truncated or foreign
file stops the run before it starts instead of failing every sample at load time. Each check returns one line
naming the file and the fix, or None when the file is sound."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Optional


SAFETENSORS_MAX_HEADER = 100_000_000  # the format's own limit on the JSON header
SENTENCEPIECE_PIECES = 32000  # Mistral-7B-v0.1's tokenizer.model; S³ adds 8 tokens to it
_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"), (b"RIFF", "a RIFF file"),
    (b"PK\x03\x04", "a zip archive"), (b"version https://git-lfs", "a Git LFS pointer — run `git lfs pull`"),
    (b"<!DOCTYPE", "an HTML page — a failed download?"), (b"<html", "an HTML page — a failed download?"),
    (b"{", "a JSON text"), (b"\x80", "a Python pickle"), (b"\x00" * 8, "zeros"),
)  # fmt: skip


def _looks_like(prefix: bytes) -> str:
    """What a file's first bytes suggest it is, for messages about foreign files."""
    kind = next((what for magic, what in _MAGIC if prefix.startswith(magic)), None)
    return f"it starts with {prefix[:8]!r}" + (f": {kind}" if kind else "")


def _foreign(path: Path, prefix: bytes, fmt: str) -> str:
    return f"{path}: not a {fmt} file ({_looks_like(prefix)}); replace it with the release's file"


def check_weight_file(path: Path) -> Optional[str]:
    """One line naming ``path`` and the fix when its structure is broken (truncated, foreign); None when sound."""
    try:
        if path.stat().st_size == 0:
            return f"{path}: is empty (0 bytes); re-copy it"
        if path.name.endswith(".safetensors"):
            return check_safetensors(path)
        return check_torch_file(path)
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc}); check the file and its permissions"


def check_safetensors(path: Path) -> Optional[str]:
    """The 8-byte little-endian header length, the JSON header and its data_offsets; the file must be at least
    as long as the largest offset promises. Reads the header only."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(32)  # 8 for the header length; more to recognise a foreign file
        if len(prefix) < 8:
            return f"{path}: is truncated ({size:,} bytes, shorter than a safetensors header); re-copy it"
        (length,) = struct.unpack("<Q", prefix[:8])
        if length < 2 or length > SAFETENSORS_MAX_HEADER:
            return _foreign(path, prefix, "safetensors")
        handle.seek(8)
        header = handle.read(length if 8 + length <= size else 64)  # cut short: enough to tell JSON
    if 8 + length > size:
        if header and not header.lstrip().startswith(b"{"):
            return _foreign(path, prefix, "safetensors")
        return f"{path}: is truncated ({size:,} of at least {8 + length:,} bytes: it ends in its header); re-copy it"
    if not header.lstrip().startswith(b"{"):
        return _foreign(path, prefix, "safetensors")
    try:
        entries = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return f"{path}: damaged safetensors header (not valid JSON); re-copy it"
    if not isinstance(entries, dict):
        return _foreign(path, prefix, "safetensors")
    end = 0
    for name, entry in entries.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):  # fmt: skip
            return f"{path}: damaged safetensors header (tensor {name!r} has no valid data_offsets); re-copy it"
        end = max(end, offsets[1])
    promised = 8 + length + end
    if size < promised:
        return f"{path}: is truncated ({size:,} of {promised:,} bytes the header promises); re-copy it"
    return None


def check_torch_file(path: Path) -> Optional[str]:
    """A ``torch.save`` zip: its central directory (written last, so a truncated file has none) must be readable,
    hold a ``data.pkl``, and every member must fit inside the file. Legacy (pre-zip) pickles are not checked."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(32)
    if prefix[:1] == b"\x80":  # legacy (pre-1.6) torch.save format: a plain pickle, nothing to check cheaply
        return None
    if not prefix.startswith(b"PK\x03\x04"):
        if size < 22 and prefix[:2] == b"PK":
            return f"{path}: is truncated ({size:,} bytes); re-copy it"
        return _foreign(path, prefix, "torch.save (zip)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        if str(exc) == "File is not a zip file":
            return f"{path}: is truncated ({size:,} bytes; the zip directory, written last, is missing); re-copy it"
        return f"{path}: is truncated or damaged ({size:,} bytes; zip directory: {exc}); re-copy it"
    except (OSError, ValueError, struct.error) as exc:
        return f"{path}: is truncated or damaged ({size:,} bytes; zip directory: {exc}); re-copy it"
    if not any(m.filename.endswith("data.pkl") for m in members):
        return f"{path}: a zip archive but not a torch.save file (no data.pkl); replace it with the release's file"
    with path.open("rb") as handle:
        for member in members:
            handle.seek(member.header_offset)
            local = handle.read(30)
            if len(local) < 30 or not local.startswith(b"PK\x03\x04"):
                where = f"entry {member.filename!r} has no header at byte {member.header_offset:,}"
                return f"{path}: damaged zip ({where}); re-copy it"
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            end = member.header_offset + 30 + name_len + extra_len + member.compress_size
            if end > size:
                return (f"{path}: is truncated or damaged ({size:,} bytes; entry {member.filename!r} needs "
                        f"{end:,}); re-copy it")  # fmt: skip
    return None


def check_sentencepiece(path: Path) -> Optional[str]:
    """Loads ``tokenizer.model`` with sentencepiece (a few MB at most) and checks it is Mistral's 32,000 pieces."""
    try:
        import sentencepiece
    except ImportError:  # transformers' slow tokenizer fails later with its own message
        return None
    size = path.stat().st_size
    if size == 0:
        return f"{path}: is empty (0 bytes); re-copy tokenizer.model from the release"
    try:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].replace(f" from {path}", "")
        for status in ("INTERNAL: ", "NOT_FOUND: ", "INVALID_ARGUMENT: "):
            reason = reason.removeprefix(status)
        return (f"{path}: not a readable SentencePiece model ({size:,} bytes; sentencepiece: {reason}); truncated "
                f"or another file — re-copy tokenizer.model from the release")  # fmt: skip
    pieces = processor.get_piece_size()
    if pieces != SENTENCEPIECE_PIECES:
        return (f"{path}: has {pieces:,} pieces, Mistral-7B-v0.1's has {SENTENCEPIECE_PIECES:,}; truncated or "
                f"another model's tokenizer — re-copy tokenizer.model from the release")  # fmt: skip
    try:  # a cut exactly between top-level fields still parses; every trained model has both specs
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(path.read_bytes())
        missing = [f for f in ("trainer_spec", "normalizer_spec") if not proto.HasField(f)]
    except Exception:  # protobuf absent or incompatible: the sentencepiece load above is the check
        missing = []
    if missing:
        return f"{path}: ends early ({size:,} bytes; no {missing[0]}): truncated — re-copy it from the release"
    return None
