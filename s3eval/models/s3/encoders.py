"""ImageBind through the `imagebind` package (PyPI `imagebind-unofficial`), with S³'s preprocessing.

Images: RGB, short side resized to 224 (bicubic), centre crop 224, [0, 1], CLIP mean/std — ImageBind's own
vision transform, applied to images given as bytes or paths.
Audio: read with soundfile (torchaudio's file loader needs FFmpeg), then ImageBind's own functions with S³'s
parameters: resample to 16 kHz, 3 clips of 2 s from pytorchvideo's ConstantClipsPerVideoSampler, Kaldi fbank with
128 mel bins cut or padded to 204 frames, normalised with mean -4.268 and std 9.138. The clips are slices (views)
of one waveform tensor, so ImageBind's in-place mean subtraction carries over between overlapping clips exactly
as in the released code.
S³ L2-normalises ImageBind's output once more, so the projector sees one unit vector per image or clip.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from ...types import Media

SAMPLE_RATE = 16000
NUM_MEL_BINS = 128
TARGET_LENGTH = 204
CLIP_DURATION = 2
CLIPS_PER_VIDEO = 3
AUDIO_MEAN, AUDIO_STD = -4.268, 9.138
IMAGE_SIZE = 224
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
# Bump when preprocessing changes: it is part of the feature-cache key.
PREPROCESSING_VERSION = "s3-imagebind-1"
# Kaldi fbank needs one whole 25 ms window at 16 kHz; ImageBind's transform asserts on anything shorter.
MIN_AUDIO_SAMPLES = 400


class MediaError(ValueError):
    """A media item that cannot be decoded; becomes a per-sample error record."""


def media_label(media: Media) -> str:
    """``image_1 (/data/x.png)``, or ``image_1 (bytes)`` for media given as bytes: how messages name media."""
    return f"{media.name} ({media.path if media.data is None and media.path else 'bytes'})"


_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _reason(exc: BaseException) -> str:
    """A decoder's message without object reprs (``<_io.BytesIO object at 0x…>``) or a repeated file path."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = _OBJECT_REPR.sub("", str(exc)).strip()
    return text or type(exc).__name__


def import_imagebind():
    """Import the imagebind package. pytorchvideo 0.1.5 (an imagebind dependency) imports
    `torchvision.transforms.functional_tensor`, which current torchvision renamed with a leading underscore."""
    import torchvision.transforms._functional_tensor as functional_tensor

    sys.modules.setdefault("torchvision.transforms.functional_tensor", functional_tensor)
    import imagebind.data
    from imagebind.models import imagebind_model

    if not any(isinstance(f, _ShortClipNotice) for f in logging.getLogger().filters):
        logging.getLogger().addFilter(_ShortClipNotice())
    return imagebind.data, imagebind_model


class _ShortClipNotice(logging.Filter):
    """ImageBind logs a root-logger warning for every clip shorter than its 2 s window ("Large gap between audio
    n_frames …"); zero-padding such clips is its documented behaviour, so the line is noise, one per clip."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Large gap between audio n_frames")


def _vision_transform():
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(IMAGE_SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(IMAGE_SIZE),
        transforms.ToTensor(),
        transforms.Normalize(mean=IMAGE_MEAN, std=IMAGE_STD),
    ])  # fmt: skip


def image_tensor(media: Media, transform=None) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        data = media.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError, EOFError) as exc:
        raise MediaError(f"{media_label(media)}: cannot decode image: {_reason(exc)}") from exc
    return (transform or _vision_transform())(rgb)


def read_waveform(media: Media) -> tuple[torch.Tensor, int]:
    """(channels, samples) float32 in [-1, 1] and the sample rate, like torchaudio.load."""
    import soundfile

    try:
        data, rate = soundfile.read(io.BytesIO(media.read_bytes()), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, ValueError, EOFError, soundfile.LibsndfileError) as exc:
        raise MediaError(f"{media_label(media)}: cannot decode audio: {_reason(exc)}") from exc
    if data.shape[0] == 0:
        raise MediaError(f"{media_label(media)}: audio has no samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def audio_tensor(media: Media) -> torch.Tensor:
    """(CLIPS_PER_VIDEO, 1, NUM_MEL_BINS, TARGET_LENGTH), as imagebind.data.load_and_transform_audio_data."""
    import torchaudio
    from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler

    data, _ = import_imagebind()
    waveform, rate = read_waveform(media)
    samples = waveform.size(1)
    if rate != SAMPLE_RATE:
        waveform = torchaudio.functional.resample(waveform, orig_freq=rate, new_freq=SAMPLE_RATE)
    if waveform.size(1) < MIN_AUDIO_SAMPLES:
        resampled = "" if rate == SAMPLE_RATE else f", {waveform.size(1):,} at {SAMPLE_RATE:,} Hz"
        raise MediaError(
            f"{media_label(media)}: audio is too short: {samples:,} samples ({samples / rate:.4g} s at {rate:,} Hz"
            f"{resampled}); ImageBind's audio transform needs at least {MIN_AUDIO_SAMPLES:,} samples at "
            f"{SAMPLE_RATE:,} Hz ({MIN_AUDIO_SAMPLES / SAMPLE_RATE:g} s)"
        )
    sampler = ConstantClipsPerVideoSampler(clip_duration=CLIP_DURATION, clips_per_video=CLIPS_PER_VIDEO)
    clips = []
    for start, end in data.get_clip_timepoints(sampler, waveform.size(1) / SAMPLE_RATE):
        view = waveform[:, int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        mel = data.waveform2melspec(view, SAMPLE_RATE, NUM_MEL_BINS, TARGET_LENGTH)
        clips.append((mel - AUDIO_MEAN) / AUDIO_STD)
    return torch.stack(clips, dim=0)


def build_imagebind(weights: str, config: Optional[dict]) -> torch.nn.Module:
    """imagebind_huge, or ImageBindModel(**config) for a sidecar config; weights loaded strictly."""
    _, imagebind_model = import_imagebind()
    model = imagebind_model.ImageBindModel(**config) if config else imagebind_model.imagebind_huge(pretrained=False)
    state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


class MediaEncoder:
    """Preprocesses and encodes media to unit-norm vectors, one batch per modality."""

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        _, imagebind_model = import_imagebind()
        self.modality = {"image": imagebind_model.ModalityType.VISION, "audio": imagebind_model.ModalityType.AUDIO}
        self.model = model.to(device=device, dtype=dtype)
        self.device, self.dtype = device, dtype
        self.transform = _vision_transform()
        self.calls = 0  # number of media items encoded (the feature cache makes this 0 on re-runs)

    def preprocess(self, media: Media) -> torch.Tensor:
        try:
            return image_tensor(media, self.transform) if media.kind == "image" else audio_tensor(media)
        except MediaError:
            raise
        except Exception as exc:  # a decoder or transform failing on odd input is the item's fault, not the run's
            raise MediaError(f"{media_label(media)}: cannot preprocess {media.kind}: {type(exc).__name__}: "
                             f"{_reason(exc)}") from exc  # fmt: skip

    @torch.inference_mode()
    def encode(self, kind: str, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        batch = torch.stack(list(inputs)).to(device=self.device, dtype=self.dtype)
        features = self.model({self.modality[kind]: batch})[self.modality[kind]]
        self.calls += len(inputs)
        return torch.nn.functional.normalize(features.float(), dim=-1)
