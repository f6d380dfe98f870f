"""The built-in AI-Journey-style dialog set, written on first use in the contest's format (``dialogs.jsonl``,
``images/``, ``audios/`` with zero-padded names) from media inside installed packages. It holds dialogs of
all four contest types, image+audio ones included, whose later turns need the earlier ones (e.g. "Which animal
did I show you?"), and explicit distractors for the likelihood proxy. Answers are unambiguous: object labels
of single-subject images, measured colour and duration. The user cache holds it (``builtin_media.ensure_set``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tasks import builtin_media

T = "text"


def _yes(flag: bool) -> str:
    return "Yes." if flag else "No."


def build_dialogs(folder: Path) -> list[dict]:
    media: dict[str, str] = {}

    def image(key: str) -> dict:
        item = builtin_media.image(key)
        name = media.setdefault(key, f"{len(media):05d}{item.path.suffix}")
        shutil.copyfile(item.path, folder / "images" / name)
        return {"type": "image", "content": name}

    def audio(key: str) -> dict:
        item = builtin_media.sound(key)
        name = media.setdefault(key, f"{len(media):05d}{item.path.suffix}")
        shutil.copyfile(item.path, folder / "audios" / name)
        return {"type": "audio", "content": name}

    def text(content: str) -> dict:
        return {"type": T, "content": content}

    cat, rocket, camera, coffee, coins = (builtin_media.image(k) for k in ("cat", "rocket", "camera", "coffee", "coins"))
    house, boom, punch, whiff = (builtin_media.sound(k) for k in ("house", "boom", "punch", "whiff"))
    colour = {True: "Black and white.", False: "In colour."}
    return [
        {"id": "image-audio-1",
         "dialog": [[text("What animal is in this picture?"), image("cat")],
                    [text("Is this sound longer than two seconds?"), audio("house")],
                    [text("Which animal did I show you?")]],
         "answers": ["A cat.", _yes(house.seconds > 2), "A cat."],
         "distractors": [["A dog.", "A horse.", "A rocket."], [_yes(not house.seconds > 2)],
                         ["A dog.", "A horse.", "A rocket."]]},
        {"id": "image-audio-2",
         "dialog": [[image("rocket"), text("What is in this picture?")],
                    [audio("boom"), text("Is this sound music?")],
                    [text("Was the picture in colour or black and white?")]],
         "answers": [rocket.label.capitalize() + ".", _yes(boom.music), colour[rocket.grey]],
         "distractors": [["A motorcycle.", "A cat.", "A clock."], [_yes(not boom.music)], [colour[not rocket.grey]]]},
        {"id": "image-audio-3",
         "dialog": [[text("Is the picture in colour, and is the sound music?"), image("camera"), audio("punch")]],
         "answers": [f"The picture is {'black and white' if camera.grey else 'in colour'}, and the sound "
                     f"is {'music' if punch.music else 'not music'}."],
         "distractors": [["The picture is in colour, and the sound is music.",
                          "The picture is black and white, and the sound is music."]]},
        {"id": "image-1",
         "dialog": [[text("What is shown here?"), image("coffee")], [text("Is it in colour or black and white?")]],
         "answers": [coffee.label.capitalize() + ".", colour[coffee.grey]],
         "distractors": [["A cat.", "Coins.", "A rocket."], [colour[not coffee.grey]]]},
        {"id": "image-2",
         "dialog": [[image("coins"), text("What is shown here?")], [text("Is the picture in colour or black and white?")]],
         "answers": [coins.label.capitalize() + ".", colour[coins.grey]],
         "distractors": [["A cup of coffee.", "A cat.", "A clock."], [colour[not coins.grey]]]},
        {"id": "audio-1",
         "dialog": [[text("Is this sound music?"), audio("house")], [text("Is it longer than two seconds?")]],
         "answers": [_yes(house.music), _yes(house.seconds > 2)],
         "distractors": [[_yes(not house.music)], [_yes(not house.seconds > 2)]]},
        {"id": "audio-2",
         "dialog": [[audio("whiff"), text("Is this sound longer than two seconds?")]],
         "answers": [_yes(whiff.seconds > 2)],
         "distractors": [[_yes(not whiff.seconds > 2)]]},
        {"id": "text-1",
         "dialog": [[text("What is the capital of Great Britain?")], [text("Which river flows through it?")]],
         "answers": ["London.", "The Thames."],
         "distractors": [["Paris.", "Berlin.", "Madrid."], ["The Seine.", "The Danube.", "The Tiber."]]},
    ]  # fmt: skip
