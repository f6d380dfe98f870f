"""Synthetic sanity sets with unambiguous answers, generated deterministically from a seed:
- image: which colour fills the picture (red, green, blue or yellow; sizes and slight noise vary);
- audio: is the tone high (1.5–2.5 kHz) or low (150–300 Hz) (2–4 s; frequency and loudness vary).
`s3eval run --media withhold|noise|shuffle` (s3eval.media_ablation) shows that answers come from the media."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (230, 220, 30)}
TONES = ("high", "low")
IMAGE_QUESTION = "What colour is the image?"
AUDIO_QUESTION = "Is the tone high or low?"


@dataclass(frozen=True)
class Item:
    id: str
    kind: str  # "image" or "audio"
    question: str
    options: tuple[str, ...]
    answer: str  # letter
    media: bytes


def png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def colour_image(rng: np.random.Generator, colour: str) -> bytes:
    height, width = int(rng.integers(48, 160)), int(rng.integers(48, 160))
    base = np.array(COLOURS[colour], dtype=float)
    return png(np.clip(base + rng.normal(0, 8, (height, width, 3)), 0, 255))


def tone(rng: np.random.Generator, pitch: str) -> bytes:
    freq = rng.uniform(1500, 2500) if pitch == "high" else rng.uniform(150, 300)
    # At least 2 s: shorter clips are zero-padded to ImageBind's 204 frames, a regime the tiny encoder confuses.
    seconds = rng.uniform(2.0, 4.0)
    t = np.arange(int(seconds * 16000)) / 16000
    return wav(rng.uniform(0.3, 0.6) * np.sin(2 * np.pi * freq * t))


def make_items(kind: str, n: int, seed: int, split: str) -> list[Item]:
    """n balanced items; the same (kind, n, seed) always gives the same bytes."""
    rng = np.random.default_rng([seed, 0 if kind == "image" else 1])
    options = tuple(COLOURS) if kind == "image" else TONES
    items = []
    for i in range(n):
        index = i % len(options)
        media = colour_image(rng, options[index]) if kind == "image" else tone(rng, options[index])
        question = IMAGE_QUESTION if kind == "image" else AUDIO_QUESTION
        items.append(Item(f"{split}_{kind}_{i}", kind, question, options, chr(ord("A") + index), media))
    return items
