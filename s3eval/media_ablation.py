"""Media ablation (``RunConfig.media``, ``s3eval run --media MODE``): a task's requests sent without their media,
with seeded noise in their place, or with another item's media, so that comparing with the unablated run shows
how much of a score the media carry. Pure: requests in, requests out; nothing is read or written.

Modes:
- ``keep``: the requests as the task built them.
- ``withhold``: no media; the text (and the order of the text parts of a dialog replica) is kept.
- ``noise``: each image becomes a 96×96 PNG of uniform random RGB pixels, each audio clip 2–4 s of Gaussian noise
  (σ 0.2) as a 16 kHz mono 16-bit WAV. The noise of a media is drawn from the seed, the task, the sample id and
  the media's position in its request, so it is the same whatever else the run selects; it is drawn again on each
  read (``NoiseMedia``) rather than held.
- ``shuffle``: each item gets another item's media of the same kind. Per kind, the items holding that kind are
  put in a single cycle by Sattolo's algorithm (a derangement: nobody keeps their own where there are at least
  two such items), seeded by the seed and the kind. The permutation therefore depends on exactly the seed and
  the task's selected items in canonical order (which of them hold media of the kind): a different ``--limit``
  or ``--samples`` gives other donors, batch size, window, shards and resumes do not.

"Item" for shuffle is the unit (a dialog, a circular question's rotations) where the caller passes ``units``:
every turn or rotation of one unit draws from the same donor unit, an original media always maps to the same
replacement within a unit, and no unit receives media from itself. A unit's distinct media of a kind, in order,
receive the donor's distinct media of that kind in order, cycling where the donor has fewer. The donor is chosen
by position, not by content: two items that hold identical files may still see the same picture.

Requests come without dialog history here: the runner adds each turn's history from the earlier turns' ablated
requests, so the model never sees an original media anywhere in an ablated run.
"""

from __future__ import annotations

import hashlib
import io
import json
import wave
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

from .types import Media, Request

KEEP, WITHHOLD, NOISE, SHUFFLE = "keep", "withhold", "noise", "shuffle"
MODES = (KEEP, WITHHOLD, NOISE, SHUFFLE)
SEEDED = (NOISE, SHUFFLE)  # the modes --media-seed changes
NOISE_IMAGE_SIDE = 96
NOISE_RATE = 16000
NOISE_SECONDS = (2.0, 4.0)  # under 2 s ImageBind zero-pads the clip, a regime of its own
NOISE_SIGMA = 0.2


def ablate(requests: Sequence[Request], mode: str, seed: int = 0,
           units: Optional[Sequence[str]] = None) -> list[Request]:  # fmt: skip
    """The requests of one task (its selected items, canonical order) as ``mode`` sends them. ``units``: the unit
    of each request (``Sample.unit`` or its id); None makes every request its own unit."""
    if mode not in MODES:
        raise ValueError(f"media mode must be one of {', '.join(MODES)}, got {mode!r}")
    if units is not None and len(units) != len(requests):
        raise ValueError(f"{len(units)} units for {len(requests)} requests")
    if any(r.history for r in requests):
        raise ValueError("ablate requests before their dialog history is added: the history is built from the "
                         "ablated earlier turns")  # fmt: skip
    if mode == KEEP:
        return list(requests)
    if mode == WITHHOLD:
        return [_with_media(r, lambda _, __: None) for r in requests]
    if mode == NOISE:
        return [_with_media(r, lambda m, i, r=r: _noise_for(m, seed, r.task, r.sample_id, i)) for r in requests]
    keys = list(units) if units is not None else [str(i) for i in range(len(requests))]
    swap = _shuffle_map(requests, keys, seed)
    return [_with_media(r, lambda m, _, k=k: replace(swap.get((k, m), m), name=m.name)) for r, k in zip(requests, keys)]


def notes(requests: Sequence[Request], mode: str, units: Optional[Sequence[str]] = None) -> list[str]:
    """What ``ablate`` leaves as it is under ``mode`` (the requests before ablation): a task without media, or a
    kind only one item holds under shuffle. Empty for keep."""
    if mode == KEEP:
        return []
    if not any(r.media for r in requests):
        return [f"{mode}: no item has media, so every request is sent as it is"]
    if mode != SHUFFLE:
        return []
    keys = list(units) if units is not None else [str(i) for i in range(len(requests))]
    out = []
    for kind, pools in _pools(requests, keys).items():
        if len(pools) == 1:
            out.append(f"shuffle: only one item has {kind} media, so it keeps its own")
    return out


ABLATION_SETTINGS = ("media", "media_seed", "media_note")  # the keys recorded_settings may write


def recorded_settings(mode: str, seed: int, found: Sequence[str]) -> dict[str, object]:
    """What a task's ``settings`` record about the ablation (nothing for keep): the mode, the seed where it
    matters, and ``found`` (``notes``) where the ablation left something as it is."""
    if mode == KEEP:
        return {}
    out: dict[str, object] = {"media": mode}
    if mode in SEEDED:
        out["media_seed"] = seed
    if found:
        out["media_note"] = "; ".join(found)
    return out


def _with_media(request: Request, change: Callable[[Media, int], Optional[Media]]) -> Request:
    """``request`` with its i-th media replaced by ``change(media, i)``, or dropped where that is None; ``parts``
    follow (they hold exactly ``media``, in order), their text kept in place."""
    new = [change(m, i) for i, m in enumerate(request.media)]
    media = tuple(m for m in new if m is not None)
    if not request.parts:
        return replace(request, media=media)
    replaced = iter(new)
    parts = (next(replaced) if isinstance(p, Media) else p for p in request.parts)
    return replace(request, media=media, parts=tuple(p for p in parts if p is not None))


def _words(*values: object) -> list[int]:
    """32-bit words of a hash of ``values``: a stable numpy seed component for text such as sample ids."""
    digest = hashlib.sha256(json.dumps(values, ensure_ascii=False).encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


@dataclass(frozen=True)
class NoiseMedia(Media):
    """Noise of ``kind`` drawn from the numpy seed ``key`` each time it is read: a run over a large set holds a
    seed per media, not its bytes (a clip of noise is ~100 kB)."""

    key: tuple[int, ...] = ()

    def read_bytes(self) -> bytes:
        import numpy as np

        return noise(np.random.default_rng(list(self.key)), self.kind)


def _noise_for(media: Media, seed: int, task: str, sample_id: str, position: int) -> Media:
    return NoiseMedia(media.kind, media.name, key=(seed, *_words("noise", task, sample_id, position)))


def noise(rng, kind: str) -> bytes:
    """Noise of ``kind`` from the numpy generator ``rng``: a random RGB PNG or a Gaussian-noise WAV (16 kHz)."""
    if kind == "image":
        from PIL import Image

        pixels = rng.integers(0, 256, (NOISE_IMAGE_SIDE, NOISE_IMAGE_SIDE, 3), dtype="uint8")
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()
    if kind == "audio":
        import numpy as np

        n = int(rng.uniform(*NOISE_SECONDS) * NOISE_RATE)
        samples = np.clip(rng.normal(0.0, NOISE_SIGMA, n), -1.0, 1.0)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(NOISE_RATE)
            out.writeframes((samples * 32767).astype("<i2").tobytes())
        return buffer.getvalue()
    raise ValueError(f"no noise for media of kind {kind!r}")


def _pools(requests: Sequence[Request], keys: Sequence[str]) -> dict[str, dict[str, list[Media]]]:
    """Per kind, per unit (in order of first appearance), the unit's distinct media of that kind in order."""
    pools: dict[str, dict[str, list[Media]]] = {}
    for key, request in zip(keys, requests):
        for m in request.media:
            pool = pools.setdefault(m.kind, {}).setdefault(key, [])
            if m not in pool:
                pool.append(m)
    return pools


def sattolo(n: int, rng) -> list[int]:
    """A uniformly drawn cyclic permutation of range(n) (Sattolo's algorithm): ``p[i]`` is never ``i`` for n ≥ 2."""
    import numpy as np

    perm = list(range(n))
    if n < 2:
        return perm
    draws = rng.integers(0, np.arange(n - 1, 0, -1))  # for i = n-1 … 1: j uniform in [0, i)
    for i, j in zip(range(n - 1, 0, -1), draws):
        perm[i], perm[int(j)] = perm[int(j)], perm[i]
    return perm


def _shuffle_map(requests: Sequence[Request], keys: Sequence[str], seed: int) -> dict[tuple[str, Media], Media]:
    """(unit, original media) → the donor unit's media that replaces it."""
    import numpy as np

    out: dict[tuple[str, Media], Media] = {}
    for kind, pools in _pools(requests, keys).items():
        order = list(pools)
        if len(order) < 2:
            continue
        donors = sattolo(len(order), np.random.default_rng([seed, *_words("shuffle", kind)]))
        for key, donor in zip(order, donors):
            own, theirs = pools[key], pools[order[donor]]
            for position, media in enumerate(own):
                out[(key, media)] = theirs[position % len(theirs)]
    return out
