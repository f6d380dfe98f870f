"""Synthetic media for tests: PNG images and WAV tones made with PIL, numpy and soundfile."""

import io

import numpy as np
import soundfile
from PIL import Image

from s3eval.types import Media


def noise_png(seed: int, size=(40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def tone_wav(
    freq: float, seconds: float, rate: int = 16000, channels: int = 1, subtype: str = "PCM_16", offset: float = 0.0
) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t) + offset
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def image(seed: int, name: str = "image_1", **kw) -> Media:
    return Media("image", name, data=noise_png(seed, **kw))


def audio(freq: float, seconds: float, name: str = "audio_1", **kw) -> Media:
    return Media("audio", name, data=tone_wav(freq, seconds, **kw))
