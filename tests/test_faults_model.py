"""Faults a tester found in the model layer (issue 13): truncated or foreign weight files stop the run during
validation with one line naming the file and the fix; badly typed model arguments are one-line errors; media
errors name the item and its file; too-short audio and over-long prompts become per-sample error records
("media", "data") before anything reaches the model, and the rest of the batch runs."""

import io
import json
import zipfile
from pathlib import Path

import pytest

from s3eval.models import build_model
from s3eval.models.base import ModelError
from s3eval.models.s3 import engine
from s3eval.models.s3.encoders import MediaError, audio_tensor, image_tensor
from s3eval.models.s3.model import S3Model
from s3eval.models.s3.spec import S3Spec
from s3eval.types import LikelihoodRequest, Media, Request

from media_factory import image, noise_png, tone_wav

ADAPTER = "s3/language_model/adapter_model.safetensors"
BASE = "base/model.safetensors"
IMAGEBIND = "s3/imagebind/imagebing_huge.pth"
PROJECTOR = "s3/projections/modality_adapters.pt"
TOKENIZER = "s3/tokenizer/tokenizer.model"
SP = "sentencepiece"
NO_DIRECTORY = "the zip directory, written last, is missing); re-copy it"


@pytest.fixture
def release(tiny_release, tmp_path):
    """A view of the tiny release in tmp_path: every file a symlink to the session's release (cheap), so a test
    replaces just the file it damages with a real file."""
    checkpoint, base = tiny_release
    root = tmp_path / "release"
    for folder, name in ((checkpoint, "s3"), (base, "base")):
        for path in folder.rglob("*"):
            if path.is_file():
                target = root / name / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(path)
    return root


def write(root: Path, relative: str, data: bytes) -> Path:
    path = root / relative
    path.unlink()
    path.write_bytes(data)
    return path


def original(root: Path, relative: str) -> bytes:
    return (root / relative).read_bytes()


def problem_lines(root: Path) -> list[str]:
    with pytest.raises(ModelError) as error:
        S3Model(S3Spec.from_args({"checkpoint": str(root / "s3"), "base": str(root / "base"), "device": "cpu"}))
    head, *lines = str(error.value).split("\n")
    assert head == "invalid S³ release:"
    return [line.strip() for line in lines]


def header_end(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


# --- weights: truncated copies -------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [ADAPTER, BASE])
def test_truncated_safetensors(release, relative):
    data = original(release, relative)
    size, header = len(data), header_end(data)
    expected = {
        0: "is empty (0 bytes); re-copy it",
        5: "is truncated (5 bytes, shorter than a safetensors header); re-copy it",
        8: f"is truncated (8 of at least {header:,} bytes: it ends in its header); re-copy it",
        header - 1: f"is truncated ({header - 1:,} of at least {header:,} bytes: it ends in its header); re-copy it",
        header: f"is truncated ({header:,} of {size:,} bytes the header promises); re-copy it",
        size // 2: f"is truncated ({size // 2:,} of {size:,} bytes the header promises); re-copy it",
        size - 1: f"is truncated ({size - 1:,} of {size:,} bytes the header promises); re-copy it",
    }
    for cut, message in expected.items():
        path = write(release, relative, data[:cut])
        assert problem_lines(release) == [f"{path}: {message}"], cut


@pytest.mark.parametrize("relative", [IMAGEBIND, PROJECTOR])
def test_truncated_torch_zip(release, relative):
    data = original(release, relative)
    for cut in (0, 5, 100, len(data) // 2, len(data) - 22, len(data) - 1):
        path = write(release, relative, data[:cut])
        message = "is empty (0 bytes); re-copy it" if cut == 0 else f"is truncated ({cut:,} bytes; {NO_DIRECTORY}"
        assert problem_lines(release) == [f"{path}: {message}"], cut


def test_truncated_tokenizer_model(release):
    data = original(release, TOKENIZER)
    for cut in (5, 1000, len(data) // 2, len(data) - 1):
        path = write(release, TOKENIZER, data[:cut])
        assert problem_lines(release) == [
            f"{path}: not a readable SentencePiece model ({cut:,} bytes; {SP}: could not parse ModelProto); "
            "truncated or another file — re-copy tokenizer.model from the release"
        ], cut
    path = write(release, TOKENIZER, b"")
    assert problem_lines(release) == [f"{path}: is empty (0 bytes); re-copy tokenizer.model from the release"]


def test_tokenizer_model_cut_between_fields(release):
    """A cut exactly between two top-level protobuf fields still parses; the missing spec gives it away."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(original(release, TOKENIZER))
    proto.ClearField("normalizer_spec")
    data = proto.SerializeToString()
    path = write(release, TOKENIZER, data)
    assert problem_lines(release) == [
        f"{path}: ends early ({len(data):,} bytes; no normalizer_spec): truncated — re-copy it from the release"
    ]
    del proto.pieces[1000:]
    path = write(release, TOKENIZER, proto.SerializeToString())
    assert problem_lines(release) == [
        f"{path}: has 1,000 pieces, Mistral-7B-v0.1's has 32,000; truncated or another model's tokenizer — "
        "re-copy tokenizer.model from the release"
    ]


def test_every_damaged_file_is_listed_at_once(release):
    adapter = write(release, ADAPTER, original(release, ADAPTER)[:4096])
    imagebind = write(release, IMAGEBIND, original(release, IMAGEBIND)[:4096])
    lines = problem_lines(release)
    assert len(lines) == 2
    assert lines[0].startswith(f"{adapter}: is truncated (4,096 of ")
    assert lines[1] == f"{imagebind}: is truncated (4,096 bytes; {NO_DIRECTORY}"


# --- weights: foreign files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative,fmt",
    [(ADAPTER, "safetensors"), (BASE, "safetensors"), (IMAGEBIND, "torch.save (zip)"), (PROJECTOR, "torch.save (zip)")],
)
def test_png_renamed_to_a_weight_file(release, relative, fmt):
    png = noise_png(1)
    path = write(release, relative, png)
    assert problem_lines(release) == [
        f"{path}: not a {fmt} file (it starts with {png[:8]!r}: a PNG image); replace it with the release's file"
    ]


def test_git_lfs_pointer_instead_of_weights(release):
    lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 14483464\n"
    path = write(release, BASE, lfs)
    assert problem_lines(release) == [
        f"{path}: not a safetensors file (it starts with {lfs[:8]!r}: a Git LFS pointer — run `git lfs pull`); "
        "replace it with the release's file"
    ]


def test_foreign_tokenizer_model(release):
    path = write(release, TOKENIZER, noise_png(2))
    size = path.stat().st_size
    assert problem_lines(release) == [
        f"{path}: not a readable SentencePiece model ({size:,} bytes; {SP}: could not parse ModelProto); "
        "truncated or another file — re-copy tokenizer.model from the release"
    ]


def test_plain_zip_renamed_to_a_torch_file(release):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    path = write(release, PROJECTOR, buffer.getvalue())
    assert problem_lines(release) == [
        f"{path}: a zip archive but not a torch.save file (no data.pkl); replace it with the release's file"
    ]


def test_sharded_base_checks_every_shard(release):
    from safetensors.torch import load_file, save_file

    state = load_file(str(release / BASE))
    (release / BASE).unlink()
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2 :]}  # fmt: skip
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(release / "base" / shard), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (release / "base" / "model.safetensors.index.json").write_text(json.dumps(index))
    args = {"checkpoint": str(release / "s3"), "base": str(release / "base"), "device": "cpu"}
    model = S3Model(S3Spec.from_args(args))
    assert model.facts.context_length == 4096
    second = release / "base" / "model-00002-of-00002.safetensors"
    data = second.read_bytes()
    second.write_bytes(data[:-10])
    assert problem_lines(release) == [
        f"{second}: is truncated ({len(data) - 10:,} of {len(data):,} bytes the header promises); re-copy it"
    ]
    second.unlink()
    assert problem_lines(release) == [
        f"{second}: missing — model.safetensors.index.json lists it; download the base model again"
    ]


# --- model arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        ({"delay": "abc"}, "model argument delay must be a number, got 'abc'"),
        ({"delay": "nan"}, "model argument delay must be a number, got 'nan'"),
        ({"delay": "-1"}, "model argument delay must be at least 0, got -1"),
    ],
)
def test_scripted_model_argument_types(args, message):
    with pytest.raises(ModelError) as error:
        build_model("constant", args)
    assert str(error.value) == message
    assert build_model("constant", {"delay": "0.25"}).delay == 0.25


@pytest.mark.parametrize(
    "args,message",
    [
        ({"batch_size": "abc"}, "model argument batch_size must be a whole number, got 'abc'"),
        ({"batch_size": "0"}, "model argument batch_size must be at least 1, got 0"),
        ({"max_new_tokens": "abc"}, "model argument max_new_tokens must be a whole number, got 'abc'"),
        ({"max_new_tokens": "1.5"}, "model argument max_new_tokens must be a whole number, got '1.5'"),
        ({"max_new_tokens": "0"}, "model argument max_new_tokens must be at least 1, got 0"),
        ({"merge_lora": "maybe"}, "model argument merge_lora must be true or false, got 'maybe'"),
        ({"empty_fallback": "2"}, "model argument empty_fallback must be true or false, got '2'"),
        ({"device": "gpu0"}, "model argument device must be a torch device such as cpu or cuda:0, got 'gpu0'"),
        ({"dtype": "int8"}, "dtype must be float32, bfloat16 or float16, got 'int8'"),
    ],
)
def test_s3_model_argument_types(tiny_release, args, message):
    checkpoint, base = tiny_release
    with pytest.raises(ModelError) as error:
        build_model("s3", {"checkpoint": str(checkpoint), "base": str(base), **args})
    assert str(error.value) == message


def test_s3_numeric_arguments_as_text_work(tiny_release):
    checkpoint, base = tiny_release
    model = build_model("s3", {"checkpoint": str(checkpoint), "base": str(base), "device": "cpu",
                               "batch_size": "2", "max_new_tokens": "7"})  # fmt: skip
    assert model.batch_size == 2 and model.spec.max_new_tokens == 7


def test_cli_bad_model_argument_is_one_line(capsys):
    from s3eval.cli import main

    assert main(["run", "--tasks", "mmmu_val", "--model", "constant", "--model-arg", "delay=abc"]) == 2
    err = capsys.readouterr().err
    assert "model argument delay must be a number, got 'abc'" in err and "Traceback" not in err


# --- media -----------------------------------------------------------------------------------------------------


def test_undecodable_image_file_names_its_path(tiny_model, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"this is not an image")
    missing = tmp_path / "gone.png"
    requests = [
        Request("t", "bad", "Describe this image.", (Media("image", "image_1", path=str(path)),)),
        Request("t", "gone", "Describe this image.", (Media("image", "image_1", path=str(missing)),)),
        Request("t", "good", "Describe this image.", (image(1),)),
    ]
    bad, gone, good = tiny_model.generate(requests)
    assert bad.text is None and bad.error_kind == "media"
    assert bad.error == f"image_1 ({path}): cannot decode image: cannot identify image file"
    assert gone.error == f"image_1 ({missing}): cannot read media: No such file or directory"
    assert gone.error_kind == "media"
    assert good.error is None and good.text is not None


def test_media_errors_have_no_object_reprs():
    with pytest.raises(MediaError) as error:
        audio_tensor(Media("audio", "audio_1", data=b"not a sound at all"))
    assert str(error.value).startswith("audio_1 (bytes): cannot decode audio: ")
    assert "object at 0x" not in str(error.value)
    with pytest.raises(MediaError) as error:
        image_tensor(Media("image", "image_2", data=noise_png(3)[:60]))
    assert str(error.value).startswith("image_2 (bytes): cannot decode image: ")
    assert "object at 0x" not in str(error.value)


def test_too_short_audio_is_a_media_error(tiny_model, tmp_path):
    path = tmp_path / "click.wav"
    path.write_bytes(tone_wav(440, 16 / 16000))
    with pytest.raises(MediaError) as error:
        audio_tensor(Media("audio", "audio_1", data=tone_wav(440, 100 / 44100, rate=44100)))
    assert str(error.value) == (
        "audio_1 (bytes): audio is too short: 100 samples (0.002268 s at 44,100 Hz, 37 at 16,000 Hz); "
        "ImageBind's audio transform needs at least 400 samples at 16,000 Hz (0.025 s)"
    )
    assert audio_tensor(Media("audio", "audio_1", data=tone_wav(440, 400 / 16000))).shape == (3, 1, 128, 204)
    requests = [
        Request("t", "click", "Which sound is this?", (Media("audio", "audio_1", path=str(path)),)),
        Request("t", "good", "Describe this image.", (image(1),)),
    ]
    click, good = tiny_model.generate(requests)
    assert click.text is None and click.error_kind == "media"
    assert click.error == (
        f"audio_1 ({path}): audio is too short: 16 samples (0.001 s at 16,000 Hz); "
        "ImageBind's audio transform needs at least 400 samples at 16,000 Hz (0.025 s)"
    )
    assert good.error is None and good.text is not None


# --- prompt limits ---------------------------------------------------------------------------------------------


def test_megabyte_question_is_a_data_error_before_the_model(tiny_model, monkeypatch):
    question = ("What colour is the large round object in the picture, and why? " * 16000)[:1_000_000]
    big = Request("t", "big", question, (image(2),))
    small = Request("t", "small", "Describe this image.", (image(1),))
    c = tiny_model.components
    n = len(engine.prepare(c, big).ids)
    assert n > 100_000
    lengths = []
    real = engine.generate
    monkeypatch.setattr(engine, "generate", lambda c, rows, budget, **kw: lengths.extend(len(r.ids) for r in rows)
                        or real(c, rows, budget, **kw))  # fmt: skip
    tiny_model.batch_size = None
    first, refused, last = tiny_model.generate([small, big, small])
    assert refused.text is None and refused.error_kind == "data"
    assert refused.error == f"prompt is {n:,} tokens + 32 to generate; the model's context is 4,096 tokens"
    assert first.error is None and last.error is None and first.text == last.text
    assert lengths and max(lengths) < 4096  # the big prompt never reached the model

    cont = len(c.tokenizer("yes</RS>", add_special_tokens=False).input_ids)
    scored = tiny_model.loglikelihood([LikelihoodRequest(big, "yes"), LikelihoodRequest(small, "yes")])
    assert scored[0].error == f"prompt is {n:,} tokens + {cont} to score; the model's context is 4,096 tokens"
    assert scored[1].error is None and scored[1].logprob < 0


def test_prompt_limit_is_exact(tiny_model):
    c = tiny_model.components
    request = Request("t", "edge", "Describe this image.", (image(1),), max_new_tokens=5)
    n = len(engine.prepare(c, request).ids)
    saved = c.context_length
    try:
        c.context_length = n + 5
        (fits,) = tiny_model.generate([request])
        assert fits.error is None
        c.context_length = n + 4
        (over,) = tiny_model.generate([request])
        assert over.error == f"prompt is {n} tokens + 5 to generate; the model's context is {n + 4} tokens"
        assert over.error_kind == "data"
    finally:
        c.context_length = saved
