"""Real images and sounds that ship inside installed packages (scikit-image, scikit-learn, matplotlib, pygame),
located without importing those packages: the built-in sets are made from them, so they run anywhere the
project is installed, with no download. Facts about each file (grey or colour, duration) are measured, not
typed in. ``ensure_set`` writes a built-in set's folder on first use, into the user cache (``s3eval.cache``)."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from s3eval import cache
from s3eval.task import TaskError

# Distributions whose files or code make the sets: the media's packages, and what measures and writes them.
SET_PACKAGES = ("scikit-image", "scikit-learn", "matplotlib", "pygame", "numpy", "pillow", "soundfile")

# (package, path inside it, what it shows)
IMAGES = {
    "astronaut": ("skimage", "data/astronaut.png", "an astronaut"),
    "camera": ("skimage", "data/camera.png", "a man with a camera"),
    "cat": ("skimage", "data/chelsea.png", "a cat"),
    "coffee": ("skimage", "data/coffee.png", "a cup of coffee"),
    "coins": ("skimage", "data/coins.png", "coins"),
    "rocket": ("skimage", "data/rocket.jpg", "a rocket"),
    "horse": ("skimage", "data/horse.png", "a horse"),
    "motorcycle": ("skimage", "data/motorcycle_left.png", "a motorcycle"),
    "chessboard": ("skimage", "data/chessboard_GRAY.png", "a chessboard"),
    "clock": ("skimage", "data/clock_motion.png", "a clock"),
    "page": ("skimage", "data/page.png", "a page of text"),
    "galaxies": ("skimage", "data/hubble_deep_field.jpg", "galaxies in space"),
    "bricks": ("skimage", "data/brick.png", "a brick wall"),
    "moon": ("skimage", "data/moon.png", "the surface of the moon"),
    "temple": ("sklearn", "datasets/images/china.jpg", "a temple"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "a flower"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "a woman in uniform"),
}
# (package, path, one-word sources a listener would name, is it music)
SOUNDS = {
    "boom": ("pygame", "examples/data/boom.wav", ("explosion", "boom", "blast", "bang"), False),
    "car_door": ("pygame", "examples/data/car_door.wav", ("door", "slam"), False),
    "punch": ("pygame", "examples/data/punch.wav", ("punch", "hit", "punching"), False),
    "whiff": ("pygame", "examples/data/whiff.wav", ("whoosh", "swish", "swoosh", "whiff"), False),
    "house": ("pygame", "examples/data/house_lo.wav", ("music",), True),
    "cosmic": ("pygame", "examples/data/secosmic_lo.wav", (), False),
}


@dataclass(frozen=True)
class ImageFile:
    key: str
    path: Path
    label: str

    @property
    def grey(self) -> bool:
        """True when every pixel has equal red, green and blue (alpha ignored)."""
        import numpy as np
        from PIL import Image

        with Image.open(self.path) as image:
            rgb = np.asarray(image.convert("RGB"))
        return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


@dataclass(frozen=True)
class SoundFile:
    key: str
    path: Path
    sources: tuple[str, ...]
    music: bool

    @property
    def seconds(self) -> float:
        import soundfile

        return float(soundfile.info(str(self.path)).duration)


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TaskError(f"the built-in sets need the {package!r} package (pip install -e .); it is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise TaskError(f"{package} is installed but has no {relative}; reinstall it (pip install -e .)")
    return path


def image(key: str) -> ImageFile:
    package, relative, label = IMAGES[key]
    return ImageFile(key, _package_file(package, relative), label)


def sound(key: str) -> SoundFile:
    package, relative, sources, music = SOUNDS[key]
    return SoundFile(key, _package_file(package, relative), sources, music)


def set_entry(name: str, build: Callable[[Path], list[dict]]) -> cache.Entry:
    """A built-in set's cache entry: keyed by this module's and the set writer's source and SET_PACKAGES."""
    return cache.Entry("sets", name, (__name__, build.__module__), SET_PACKAGES)


def ensure_set(name: str, build: Callable[[Path], list[dict]], filename: str = "questions.jsonl") -> Path:
    """The built set's folder in the user cache, written by ``build`` when missing or made by other code: in a
    private temporary folder renamed into place (``s3eval.cache.ensure``), so a crash leaves no half set and
    concurrent builders (torchrun ranks) cannot collide."""

    def write(folder: Path) -> None:
        for sub in ("images", "audios"):
            (folder / sub).mkdir()
        rows = build(folder)
        (folder / filename).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                       encoding="utf-8")  # fmt: skip

    return cache.ensure(set_entry(name, build), write)
