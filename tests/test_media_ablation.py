"""Media ablation (`--media keep|withhold|noise|shuffle`): each mode on hand-made requests, its place in the run
config and the run id, what a run records, and dialog histories that never show an original media."""

import io
import json
import wave

import numpy as np
import pytest
from PIL import Image

from s3eval import leaderboard
from s3eval import media_ablation as ma
from s3eval.cli import main
from s3eval.config import ConfigError, RunConfig, TaskSpec, config_from_mapping
from s3eval.runner import run
from s3eval.storage import read_jsonl
from s3eval.task_registry import load_definitions
from s3eval.types import Media, Request, Turn

from dialog_factory import RecordingModel, img, t, write_dialog_set
from media_factory import audio, image


def image_requests(n, task="t"):
    return [Request(task, f"s{i}", f"question {i}", (image(i),)) for i in range(n)]


def hashes(requests):
    return [[m.content_hash() for m in r.media] for r in requests]


def test_keep_is_the_identity_and_modes_are_checked():
    requests = image_requests(3)
    assert ma.ablate(requests, "keep", 5) == requests and ma.notes(requests, "keep") == []
    with pytest.raises(ValueError, match="media mode must be one of keep, withhold, noise, shuffle, got 'mute'"):
        ma.ablate(requests, "mute")
    with_history = Request("t", "s", "q", history=(Turn(("hi", image(1)), "a"),))
    with pytest.raises(ValueError, match="before their dialog history is added"):
        ma.ablate([with_history], "withhold")


def test_withhold_drops_the_media_and_keeps_the_text_in_place():
    plain = Request("t", "a", "What colour?", (image(1), image(2)), max_new_tokens=4, candidates=("red",))
    layout = Request.of_parts("t", "b", ["Look:", image(3), "and listen:", audio(440, 1.0), "which?"])
    text_only = Request("t", "c", "Capital of France?")
    only_media = Request.of_parts("t", "d", [image(4)])
    out = ma.ablate([plain, layout, text_only, only_media], "withhold")
    assert out[0] == Request("t", "a", "What colour?", (), max_new_tokens=4, candidates=("red",))
    assert out[1].media == () and out[1].parts == ("Look:", "and listen:", "which?")
    assert out[1].prompt == layout.prompt == "Look:\nand listen:\nwhich?"
    assert out[2] == text_only
    assert out[3].media == () and out[3].parts == () and out[3].query() == ()
    assert ma.notes([plain, layout, text_only], "withhold") == []
    assert ma.notes([text_only], "withhold") == ["withhold: no item has media, so every request is sent as it is"]


def test_noise_keeps_kinds_names_and_layout_and_is_seeded_by_item_and_position():
    layout = Request.of_parts("t", "b", ["Look:", image(3, "image_1"), "listen:", audio(440, 1.0, "audio_1")])
    requests = image_requests(2) + [layout]
    out = ma.ablate(requests, "noise", seed=0)
    assert [[(m.kind, m.name) for m in r.media] for r in out] == [[("image", "image_1")]] * 2 + [
        [("image", "image_1"), ("audio", "audio_1")]]  # fmt: skip
    assert out[2].parts[0] == "Look:" and out[2].parts[2] == "listen:"
    assert tuple(p for p in out[2].parts if isinstance(p, Media)) == out[2].media
    original, noisy = hashes(requests), hashes(out)
    assert all(a != b for r, s in zip(original, noisy) for a, b in zip(r, s))
    assert len({h for r in noisy for h in r}) == 4  # each media its own noise
    assert all(m.data is None and m.path is None for r in out for m in r.media)  # a seed is held, not the bytes
    picture = Image.open(io.BytesIO(out[0].media[0].read_bytes()))
    assert (picture.format, picture.mode, picture.size) == ("PNG", "RGB", (96, 96))
    with wave.open(io.BytesIO(out[2].media[1].read_bytes())) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16000, 1, 2)
        assert 2.0 <= clip.getnframes() / 16000 <= 4.0
    # Deterministic per seed; another seed, other noise; the same noise whatever else the run selects.
    assert hashes(ma.ablate(requests, "noise", seed=0)) == noisy
    assert all(a != b for a, b in zip(hashes(ma.ablate(requests, "noise", seed=1)), noisy))
    assert hashes(ma.ablate(requests[1:], "noise", seed=0)) == noisy[1:]
    assert ma.notes(requests, "noise") == []


def test_shuffle_is_a_seeded_derangement_per_kind():
    requests = image_requests(6)
    original = [h[0] for h in hashes(requests)]
    out = ma.ablate(requests, "shuffle", seed=0)
    got = [h[0] for h in hashes(out)]
    # Pinned: seed 0's single cycle over the six items.
    assert [original.index(h) for h in got] == [3, 0, 4, 5, 1, 2]
    assert sorted(got) == sorted(original) and all(a != b for a, b in zip(got, original))
    assert [h[0] for h in hashes(ma.ablate(requests, "shuffle", seed=0))] == got  # deterministic
    assert [h[0] for h in hashes(ma.ablate(requests, "shuffle", seed=1))] != got  # another seed, other donors
    assert [r.media[0].name for r in out] == ["image_1"] * 6  # the slot keeps its name
    assert [r.prompt for r in out] == [r.prompt for r in requests]


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_sattolo_gives_a_single_cycle_for_every_seed(n):
    for seed in range(25):
        perm = ma.sattolo(n, np.random.default_rng(seed))
        assert sorted(perm) == list(range(n)) and all(p != i for i, p in enumerate(perm))
        length, k = 1, perm[0]
        while k != 0:
            k, length = perm[k], length + 1
        assert length == n
    assert ma.sattolo(1, np.random.default_rng(0)) == [0] and ma.sattolo(0, np.random.default_rng(0)) == []


def test_shuffle_never_mixes_kinds_and_leaves_a_lone_kind_as_it_is():
    tone = audio(300, 1.0, "audio_1")
    requests = [Request("t", "a", "q", (image(1), tone)), Request("t", "b", "q", (image(2),)),
                Request.of_parts("t", "c", ["see", image(3), "then"])]  # fmt: skip
    out = ma.ablate(requests, "shuffle", seed=0)
    assert [[m.kind for m in r.media] for r in out] == [["image", "audio"], ["image"], ["image"]]
    assert out[0].media[1] == tone  # the only item with audio keeps it
    images = [hashes(requests)[i][0] for i in range(3)]
    sent = [h[0] for h in hashes(out)]
    assert all(a != b for a, b in zip(sent, images)) and sorted(sent) == sorted(images)
    assert out[2].parts[0] == "see" and out[2].parts[2] == "then" and out[2].parts[1] == out[2].media[0]
    assert ma.notes(requests, "shuffle") == ["shuffle: only one item has audio media, so it keeps its own"]
    lone = [Request("t", "a", "q", (image(1),)), Request("t", "b", "q")]
    assert ma.ablate(lone, "shuffle", seed=3) == lone
    assert ma.notes(lone, "shuffle") == ["shuffle: only one item has image media, so it keeps its own"]


def test_shuffle_by_unit_gives_every_rotation_the_same_donor_and_no_unit_its_own():
    # Three questions, each in two rotations that share the question's two images.
    pictures = {q: (image(10 * q + 1, "image_1"), image(10 * q + 2, "image_2")) for q in range(3)}
    requests = [Request("t", f"q{q}/r{r}", f"question {q}, rotation {r}", pictures[q])
                for q in range(3) for r in range(2)]  # fmt: skip
    units = [f"q{q}" for q in range(3) for _ in range(2)]
    out = ma.ablate(requests, "shuffle", seed=0, units=units)
    owner = {m.content_hash(): q for q, pair in pictures.items() for m in pair}
    for q in range(3):
        first, second = out[2 * q].media, out[2 * q + 1].media
        assert [m.content_hash() for m in first] == [m.content_hash() for m in second]  # the rotations agree
        donors = {owner[m.content_hash()] for m in first}
        assert len(donors) == 1 and donors != {q}  # one other question's images
        position = [pictures[owner[m.content_hash()]].index(Media(m.kind, f"image_{i + 1}", data=m.data))
                    for i, m in enumerate(first)]  # fmt: skip
        assert position == [0, 1]  # its first image for the first, its second for the second


def test_a_donor_with_fewer_media_is_cycled_through():
    requests = [Request("t", "a", "q", (image(1, "image_1"), image(2, "image_2"), image(3, "image_3"))),
                Request("t", "b", "q", (image(4),))]  # fmt: skip
    out = ma.ablate(requests, "shuffle", seed=0)
    four = image(4).content_hash()
    assert hashes(out) == [[four] * 3, [image(1).content_hash()]]
    assert [m.name for m in out[0].media] == ["image_1", "image_2", "image_3"]


def test_recorded_settings():
    assert ma.recorded_settings("keep", 3, []) == {}
    assert ma.recorded_settings("withhold", 3, []) == {"media": "withhold"}
    assert ma.recorded_settings("shuffle", 3, ["x", "y"]) == {"media": "shuffle", "media_seed": 3, "media_note": "x; y"}


def test_config_validation_and_the_run_id():
    base = RunConfig(tasks=[TaskSpec("sanity_image")])
    # Pinned before the media fields existed: a run that keeps its media keeps its run id.
    assert base.result_hash() == "d78f7639cbaad716db790daca7436b34e1cd54f9a853e1a13b1dc17f87c5d5e1"
    assert RunConfig(tasks=[TaskSpec("sanity_image")], media="keep", media_seed=7).result_hash() == base.result_hash()
    withhold = RunConfig(tasks=[TaskSpec("sanity_image")], media="withhold")
    assert withhold.result_hash() != base.result_hash()
    seeded = RunConfig(tasks=[TaskSpec("sanity_image")], media="withhold", media_seed=4)
    assert seeded.result_hash() == withhold.result_hash()  # withhold draws nothing: its seed changes no result
    noise = [RunConfig(tasks=[TaskSpec("sanity_image")], media="noise", media_seed=s).result_hash() for s in (0, 1)]
    shuffle = RunConfig(tasks=[TaskSpec("sanity_image")], media="shuffle").result_hash()
    assert len({base.result_hash(), withhold.result_hash(), *noise, shuffle}) == 5
    with pytest.raises(ConfigError, match=r"^media must be one of keep, withhold, noise, shuffle \(--media MODE\), "
                                          r"got 'mute'$"):  # fmt: skip
        RunConfig(tasks=[TaskSpec("sanity_image")], media="mute").validate()
    for bad in (-1, True, "3"):
        with pytest.raises(ConfigError, match=r"^media_seed must be a non-negative integer \(--media-seed N\)"):
            RunConfig(tasks=[TaskSpec("sanity_image")], media_seed=bad).validate()
    cfg = config_from_mapping({"media": "shuffle", "media_seed": 3, "tasks": ["sanity_image"]})
    assert (cfg.media, cfg.media_seed) == ("shuffle", 3)
    with pytest.raises(ConfigError, match="`media_seed` must be an integer, got 'x'"):
        config_from_mapping({"media_seed": "x"})


def sanity_config(tmp_path, **kw):
    kw.setdefault("run_name", None)
    return RunConfig(model="constant", model_args={"answer": "A"}, tasks=[TaskSpec("sanity_image")], limit=8,
                     output_dir=str(tmp_path / "runs"), leaderboard=str(tmp_path / "lb.csv"), **kw)  # fmt: skip


def records_of(outcome, task="sanity_image"):
    return list(read_jsonl(outcome.run_dir / f"samples_{task}.jsonl"))


def test_an_ablated_run_pairs_with_the_kept_one_and_records_its_mode(tmp_path):
    keep = run(sanity_config(tmp_path), show_progress=False)
    withhold = run(sanity_config(tmp_path, media="withhold"), show_progress=False)
    kept, withheld = records_of(keep), records_of(withhold)
    assert withhold.run_dir != keep.run_dir
    assert [r["media_hashes"] for r in withheld] == [[]] * 8 and all(len(r["media_hashes"]) == 1 for r in kept)
    assert [r["prompt_hash"] for r in withheld] == [r["prompt_hash"] for r in kept]
    assert "media" not in keep.results["tasks"]["sanity_image"]["settings"]
    assert withhold.results["tasks"]["sanity_image"]["settings"]["media"] == "withhold"
    assert withhold.results["config"]["media"] == "withhold" and keep.results["config"]["media"] == "keep"
    assert leaderboard.read(tmp_path / "lb.csv")["media"].tolist() == ["keep", "withhold"]
    again = run(sanity_config(tmp_path, media="withhold"), show_progress=False)
    assert again.run_dir == withhold.run_dir and again.resumed["sanity_image"] == (8, 8)

    noise = records_of(run(sanity_config(tmp_path, media="noise"), show_progress=False))
    assert all(len(n["media_hashes"]) == 1 and n["media_hashes"] != k["media_hashes"] for n, k in zip(noise, kept))
    shuffled_run = run(sanity_config(tmp_path, media="shuffle", media_seed=2), show_progress=False)
    shuffled = records_of(shuffled_run)
    assert sorted(h for r in shuffled for h in r["media_hashes"]) == sorted(h for r in kept for h in r["media_hashes"])
    assert all(s["media_hashes"] != k["media_hashes"] for s, k in zip(shuffled, kept))
    assert [r["prompt_hash"] for r in shuffled] == [r["prompt_hash"] for r in kept]
    assert shuffled_run.results["tasks"]["sanity_image"]["settings"]["media_seed"] == 2

    from s3eval.rescore import rescore_path

    (rescored,) = rescore_path(shuffled_run.run_dir)  # what the responses answered stays recorded
    assert {k: rescored.result.settings[k] for k in ("media", "media_seed")} == {"media": "shuffle", "media_seed": 2}


def test_the_cli_flags_reach_the_run(tmp_path, capsys):
    common = ["run", "--model", "constant", "--tasks", "sanity_audio", "--limit", "2", "--output-dir",
              str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "lb.csv"), "--quiet"]  # fmt: skip
    assert main([*common, "--media", "noise", "--media-seed", "5"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert (results["config"]["media"], results["config"]["media_seed"]) == ("noise", 5)
    assert results["tasks"]["sanity_audio"]["settings"]["media"] == "noise"
    capsys.readouterr()
    assert main([*common, "--media", "mute"]) == 2
    assert capsys.readouterr().err == ("s3eval: error: media must be one of keep, withhold, noise, shuffle "
                                       "(--media MODE), got 'mute'\n")  # fmt: skip
    assert main([*common, "--task-arg", "media=withhold"]) == 2
    assert "`media` is no longer a task argument; use the run option --media MODE" in capsys.readouterr().err


def define(tmp_path, dialogs):
    folder = write_dialog_set(tmp_path / "set", dialogs)
    name = f"dlg_{tmp_path.name}"
    entry = {"name": name, "format": "dialog", "path": str(folder)}
    (tmp_path / "defs.yaml").write_text(json.dumps({"tasks": [entry]}))  # JSON is YAML
    load_definitions(tmp_path / "defs.yaml")
    return name


TWO_PICTURES = [
    {"id": "d1", "dialog": [[t("What is this?"), img("00000.png")], [t("And now?")]], "answers": ["one", "two"]},
    {"id": "d2", "dialog": [[t("Look:"), img("00001.png"), t("well?")], [t("Again?")]], "answers": ["three", "four"]},
]  # fmt: skip


def dialog_run(tmp_path, name, media):
    RecordingModel.requests.clear()
    config = RunConfig(model="recording", tasks=[TaskSpec(name)], output_dir=str(tmp_path / "runs"),
                       leaderboard=None, media=media)  # fmt: skip
    outcome = run(config, show_progress=False)
    return outcome, {r.sample_id: r for r in RecordingModel.requests}


def history_media(request):
    return [p for turn in request.history for p in turn.parts if isinstance(p, Media)]


def test_dialog_histories_carry_the_ablated_media(tmp_path):
    name = define(tmp_path, TWO_PICTURES)
    pictures = [(tmp_path / "set" / "images" / f).read_bytes() for f in ("00000.png", "00001.png")]

    _, asked = dialog_run(tmp_path, name, "withhold")
    assert all(r.media == () and history_media(r) == [] for r in asked.values())
    assert asked["d2/2"].history[0].parts == ("Look:", "well?")

    outcome, asked = dialog_run(tmp_path, name, "noise")
    (sent,) = asked["d1/1"].media
    assert sent.read_bytes() not in pictures and history_media(asked["d1/2"]) == [sent]
    records = records_of(outcome, name)
    assert records[0]["media_hashes"] == [sent.content_hash()]

    _, asked = dialog_run(tmp_path, name, "shuffle")  # two dialogs: each sees the other's picture, everywhere
    assert [m.read_bytes() for m in asked["d1/1"].media + tuple(history_media(asked["d1/2"]))] == [pictures[1]] * 2
    assert [m.read_bytes() for m in asked["d2/1"].media + tuple(history_media(asked["d2/2"]))] == [pictures[0]] * 2


def test_a_task_without_media_runs_as_it_is_and_says_so(tmp_path):
    name = define(tmp_path, [{"id": "d1", "dialog": [[t("Capital of France?")]], "answers": ["Paris"]}])
    kept, asked_kept = dialog_run(tmp_path, name, "keep")
    withheld, asked = dialog_run(tmp_path, name, "withhold")
    assert asked == asked_kept
    settings = withheld.results["tasks"][name]["settings"]
    assert settings["media"] == "withhold"
    assert settings["media_note"] == "withhold: no item has media, so every request is sent as it is"
    assert "media" not in kept.results["tasks"][name]["settings"]
