"""S³ preprocessing equals ImageBind's own loaders (upstream takes paths and reads audio with torchaudio.load,
which needs FFmpeg here, so the test substitutes a soundfile reader for it, as the dependency notes verified)."""

import re

import pytest
import torch

from s3eval.models.s3.encoders import MediaError, audio_tensor, image_tensor, import_imagebind, read_waveform
from s3eval.types import Media

from media_factory import noise_png, tone_wav

data_module, _ = import_imagebind()


def test_image_preprocessing_equals_imagebind(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(noise_png(3, size=(300, 200)))
    ours = image_tensor(Media("image", "image_1", path=str(path)))
    upstream = data_module.load_and_transform_vision_data([str(path)], "cpu")[0]
    assert ours.shape == (3, 224, 224)
    assert torch.equal(ours, upstream)


@pytest.mark.parametrize(
    "seconds,rate,channels",
    [(1.0, 16000, 1), (3.0, 44100, 2), (7.1, 11025, 1), (9.0, 16000, 1)],
    ids=["short-all-clips-equal", "resampled-stereo-overlapping", "pygame-like-rate", "no-overlap"],
)
def test_audio_preprocessing_equals_imagebind(tmp_path, monkeypatch, seconds, rate, channels):
    path = tmp_path / "x.wav"
    path.write_bytes(tone_wav(440, seconds, rate=rate, channels=channels))
    ours = audio_tensor(Media("audio", "a", path=str(path)))

    def soundfile_load(p):
        return read_waveform(Media("audio", "a", path=str(p)))

    monkeypatch.setattr(data_module.torchaudio, "load", soundfile_load)
    upstream = data_module.load_and_transform_audio_data([str(path)], "cpu")[0]
    assert ours.shape == (3, 1, 128, 204)
    assert torch.equal(ours, upstream)


def test_in_place_mean_quirk_is_kept():
    """Clips are views of one waveform: the first clip's in-place mean subtraction shifts samples the second,
    overlapping clip uses. Computing each clip on its own copy gives a different second clip."""
    media = Media("audio", "a", data=tone_wav(300, 3.0, offset=0.3))
    ours = audio_tensor(media)
    waveform, _ = read_waveform(media)
    starts = [int(k * (3.0 - 2) / 3 * 16000) for k in range(3)]  # pytorchvideo 0.1.5: k * (duration - 2) / 3
    independent = [
        (data_module.waveform2melspec(waveform[:, s : s + 32000].clone(), 16000, 128, 204) + 4.268) / 9.138
        for s in starts
    ]
    assert torch.equal(ours[0], independent[0])
    assert (ours[1] - independent[1]).abs().max() > 1e-2


def test_undecodable_media_are_media_errors():
    with pytest.raises(MediaError, match=r"^image_1 \(bytes\): cannot decode image: "):
        image_tensor(Media("image", "image_1", data=b"\x89PNG\r\n\x1a\n truncated"))
    with pytest.raises(MediaError, match=r"^a \(bytes\): cannot decode audio: "):
        audio_tensor(Media("audio", "a", data=b"RIFF....WAVEfmt garbage"))
    with pytest.raises(MediaError, match=r"^image_1 \(bytes\): cannot decode image: cannot identify image file$"):
        image_tensor(Media("image", "image_1", data=b""))


def test_zero_byte_huge_and_missing_media(tmp_path, monkeypatch):
    from PIL import Image

    with pytest.raises(MediaError, match=r"^a \(bytes\): cannot decode audio"):
        audio_tensor(Media("audio", "a", data=b""))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # anything above 2x this is a decompression bomb
    with pytest.raises(MediaError, match=r"^image_1 \(bytes\): cannot decode image: Image size .* decompression bomb"):
        image_tensor(Media("image", "image_1", data=noise_png(1, size=(40, 30))))
    missing = tmp_path / "missing.png"
    with pytest.raises(MediaError, match=rf"^image_1 \({re.escape(str(missing))}\): cannot decode image: No such file"):
        image_tensor(Media("image", "image_1", path=str(missing)))
