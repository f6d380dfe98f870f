"""The user cache of built-in assets: the tiny S³ releases, the trained sanity release and the built-in sets.
Project code makes them on first use; they live outside the source tree, in

    cache_root()  =  the folder given to set_cache_root()         (the CLI's --cache-dir / config cache_dir)
                  or $XDG_CACHE_HOME/s3eval  (when XDG_CACHE_HOME is an absolute path)
                  or ~/.cache/s3eval

Each entry is ``<root>/<kind>/<name>-<key>/`` where ``key`` hashes the source text of the modules that make it
and the versions of the packages whose code shapes it (s3eval's own version included). Changing that code gives
a new key, so the entry is rebuilt; the old one stays until ``s3eval cache clear``. An entry is complete when its
manifest (``s3eval-entry.json``: what made it, when, the key's inputs) exists: it is written last, inside a
private temporary folder that is then renamed into place, so an interrupted or concurrent build (torchrun ranks)
never leaves a half-written entry — the first rename wins, the others discard their copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from . import __version__

MANIFEST = "s3eval-entry.json"
KINDS = ("releases", "sets")  # the only folders under the root that ``clear`` touches
_TEMP_PREFIX = ".building-"
_root: Optional[Path] = None


def default_root() -> Path:
    """``$XDG_CACHE_HOME/s3eval`` (an absolute XDG_CACHE_HOME only, as the XDG spec says), else ``~/.cache/s3eval``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "s3eval"


def set_cache_root(path: Union[str, os.PathLike, None]) -> None:
    """Use ``path`` as the cache root from now on (``None``: back to the default). The CLI calls this for
    ``--cache-dir`` / the ``cache_dir`` config key; the test suite for its own session-wide folder."""
    global _root
    _root = Path(path).expanduser().resolve() if path is not None else None


def cache_root() -> Path:
    return _root if _root is not None else default_root()


def module_source(module: str) -> bytes:
    """The source text of a module (found without importing it, though its parent packages are imported). A module
    without a file of its own (a zip import) counts by its name only: s3eval's version still keys it."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise LookupError(f"no module {module!r}")
    if not spec.origin or not os.path.isfile(spec.origin):
        return f"{module}: no source file".encode()
    return Path(spec.origin).read_bytes()


def package_version(distribution: str) -> Optional[str]:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Entry:
    """A cache entry: ``kind`` (releases or sets), ``name``, the modules whose source makes it and the packages
    (distribution names) whose versions shape it."""

    kind: str
    name: str
    modules: tuple[str, ...]
    packages: tuple[str, ...] = ()
    settings: dict = field(default_factory=dict)  # other inputs of the build (e.g. a seed)

    def inputs(self) -> dict:
        """What the key hashes: each module's source sha256, package versions, settings, s3eval's version."""
        return {
            "modules": {m: hashlib.sha256(module_source(m)).hexdigest() for m in self.modules},
            "packages": {p: package_version(p) for p in self.packages},
            "settings": self.settings,
            "s3eval": __version__,
        }

    def key(self) -> str:
        text = json.dumps([self.kind, self.name, self.inputs()], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def path(self) -> Path:
        if self.kind not in KINDS:
            raise ValueError(f"cache entry kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        return cache_root() / self.kind / f"{self.name}-{self.key()}"


def is_complete(folder: Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def ensure(entry: Entry, build: Callable[[Path], object]) -> Path:
    """The entry's folder, made by ``build(folder)`` first when it is missing (see the module docstring)."""
    key = entry.key()
    target = entry.path
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{target.name}.", dir=target.parent))
    try:
        started = time.time()
        build(tmp)
        manifest = {"kind": entry.kind, "name": entry.name, "key": key,
                    "made_by": list(entry.modules), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "build_seconds": round(time.time() - started, 1), **entry.inputs()}  # fmt: skip
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if target.exists() and not is_complete(target):
            shutil.rmtree(target, ignore_errors=True)  # a foreign or broken folder under the entry's name
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_complete(target):  # not someone else's finished build
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Found:
    """A folder found under the cache root by ``entries``."""

    path: Path
    size: int  # bytes
    manifest: Optional[dict]  # None: an unfinished or foreign folder

    @property
    def current(self) -> Optional[bool]:
        """Whether today's code would give the same key (None: cannot tell)."""
        if not self.manifest:
            return None
        try:
            entry = Entry(self.manifest["kind"], self.manifest["name"], tuple(self.manifest["made_by"]),
                          tuple(self.manifest.get("packages", {})), self.manifest.get("settings", {}))  # fmt: skip
            return entry.key() == self.manifest["key"]
        except Exception:  # a module gone or renamed, a hand-edited manifest
            return None


def _size(folder: Path) -> int:
    """Bytes on disk: a file hard-linked several times (a checkpoint series sharing its tokenizer) counts once."""
    files = {}
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            stat = p.stat()
            files[(stat.st_dev, stat.st_ino)] = stat.st_size
    return sum(files.values())


def entries(root: Optional[Path] = None) -> list[Found]:
    """Every folder in the cache's kind folders: complete entries and leftovers of interrupted builds."""
    root = Path(root) if root is not None else cache_root()
    found = []
    for kind in KINDS:
        if not (root / kind).is_dir():
            continue
        for folder in sorted((root / kind).iterdir()):
            if not folder.is_dir() or folder.is_symlink():
                continue
            manifest = None
            if is_complete(folder):
                try:
                    manifest = json.loads((folder / MANIFEST).read_text())
                except (OSError, ValueError):
                    manifest = None
            found.append(Found(folder, _size(folder), manifest))
    return found


def clear(root: Optional[Path] = None, only: Optional[Iterable[Found]] = None) -> list[Found]:
    """Remove the cache's entries (all, or ``only`` those given) and return what was removed. Only folders inside
    the kind folders are touched, so a cache root pointed at a folder with other content loses nothing else."""
    root = Path(root) if root is not None else cache_root()
    removed = []
    for found in list(only) if only is not None else entries(root):
        shutil.rmtree(found.path, ignore_errors=True)
        if not found.path.exists():
            removed.append(found)
    for kind in KINDS:
        try:
            (root / kind).rmdir()  # only when empty
        except OSError:
            pass
    return removed


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def describe(found: Found) -> str:
    """One line for ``s3eval cache info``."""
    rel = f"{found.path.parent.name}/{found.path.name}"
    if found.manifest is None:
        return f"{rel}  {human_size(found.size)}  unfinished build (or not made by s3eval): `clear` removes it"
    m = found.manifest
    state = {True: "current", False: "stale: the code that made it changed", None: "unknown"}[found.current]
    versions = ", ".join(f"{p} {v}" for p, v in sorted(m.get("packages", {}).items()) if v)
    settings = ", ".join(f"{k}={v}" for k, v in sorted(m.get("settings", {}).items()))
    made = f"made {m.get('created', '?')} in {m.get('build_seconds', '?')} s by {', '.join(m.get('made_by', []))}"
    if settings:
        made += f" ({settings})"
    return f"{rel}  {human_size(found.size)}  {state}; {made}; s3eval {m.get('s3eval', '?')}" + (
        f", {versions}" if versions else "")
