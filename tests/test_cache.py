"""The user cache of built-in assets (s3eval.cache): where it is, content keys, builds that happen once and
atomically, and `s3eval cache info|clear`. Builders here are cheap stand-ins; the real assets are covered by
tests/test_s3_release.py, tests/test_sanity.py and tests/test_builtin_sets.py. Last, the thread rule
(s3eval/threads.py), the other per-process setting the CLI applies."""

import importlib
import json
import re
import sys
from pathlib import Path

import pytest

from s3eval import cache
from s3eval.cli import main


@pytest.fixture
def root(tmp_path):
    cache.set_cache_root(tmp_path / "cache")  # conftest puts the suite's cache back after each test
    return tmp_path / "cache"


@pytest.fixture
def maker(tmp_path, monkeypatch):
    """A module on sys.path standing for the code that makes an entry; ``edit`` changes its source."""
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "fake_maker.py").write_text("VERSION = 1\n")
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()

    def edit(text):
        (folder / "fake_maker.py").write_text(text)

    yield edit
    sys.modules.pop("fake_maker", None)


def entry(name="thing", kind="releases"):
    return cache.Entry(kind, name, ("fake_maker",), ("pytest",), {"seed": 0})


def writer(calls):
    def build(folder: Path):
        calls.append(folder)
        (folder / "data.bin").write_bytes(b"x" * 1000)

    return build


def test_root_follows_xdg_then_home_unless_set(monkeypatch, tmp_path):
    cache.set_cache_root(None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "s3eval"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: relative values are ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "s3eval"
    cache.set_cache_root(tmp_path / "mine")
    assert cache.cache_root() == tmp_path / "mine"


def test_built_once_with_a_manifest_and_no_leftovers(root, maker):
    calls = []
    folder = cache.ensure(entry(), writer(calls))
    assert folder == root / "releases" / f"thing-{entry().key()}" and cache.is_complete(folder)
    assert cache.ensure(entry(), writer(calls)) == folder and len(calls) == 1
    assert [p.name for p in (root / "releases").iterdir()] == [folder.name]  # the temporary folder was renamed
    manifest = json.loads((folder / cache.MANIFEST).read_text())
    assert manifest["made_by"] == ["fake_maker"] and manifest["key"] == entry().key()
    assert manifest["settings"] == {"seed": 0} and manifest["packages"]["pytest"]


def test_changed_code_makes_a_new_entry_and_keeps_the_old_one(root, maker):
    calls = []
    old = cache.ensure(entry(), writer(calls))
    maker("VERSION = 2\n")
    new = cache.ensure(entry(), writer(calls))
    assert new != old and old.is_dir() and len(calls) == 2
    states = {f.path: f.current for f in cache.entries()}
    assert states == {old: False, new: True}


def test_a_failed_build_leaves_nothing(root, maker):
    def broken(folder):
        (folder / "half").write_text("…")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        cache.ensure(entry(), broken)
    assert list((root / "releases").iterdir()) == []


def test_a_concurrent_builder_that_finished_first_wins(root, maker):
    calls = []

    def racing(folder):
        calls.append(folder)
        # Another process finishes the same entry while this one is still building.
        other = entry().path
        other.mkdir(parents=True)
        (other / "data.bin").write_bytes(b"theirs")
        (other / cache.MANIFEST).write_text(json.dumps({"key": entry().key()}))
        (folder / "data.bin").write_bytes(b"mine")

    folder = cache.ensure(entry(), racing)
    assert (folder / "data.bin").read_bytes() == b"theirs"
    assert [p.name for p in (root / "releases").iterdir()] == [folder.name]


def test_info_and_clear_on_the_command_line(root, maker, tmp_path, capsys):
    calls = []
    cache.ensure(entry("tiny"), writer(calls))
    cache.ensure(entry("vqa_builtin_images", kind="sets"), writer(calls))
    (root / "releases" / ".building-tiny-x.123").mkdir()  # an interrupted build's leftover
    (root / "notes.txt").write_text("not ours")
    cache.set_cache_root(None)  # --cache-dir must win over the default

    assert main(["cache", "info", "--cache-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"cache: {root} (3 entries" in out
    assert re.search(rf"releases/tiny-{entry('tiny').key()}  1\.\d KB  current; made ", out)  # data + manifest
    assert "by fake_maker (seed=0)" in out
    assert "unfinished build" in out and "sets/vqa_builtin_images-" in out

    maker("VERSION = 2\n")
    assert main(["cache", "clear", "--stale", "--cache-dir", str(root)]) == 0
    assert capsys.readouterr().out.count("removed ") == 4  # 3 stale or unfinished + the summary line
    cache.ensure(entry("tiny"), writer(calls))
    assert main(["cache", "clear", "--cache-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"removed {root / 'releases'}" in out and "removed 1 entry," in out
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]  # only the cache's own folders are touched


def test_thread_rule_and_explicit_choices(monkeypatch):
    """The other per-process setting the CLI applies (s3eval/threads.py): the rule, and explicit counts winning."""
    import torch

    from s3eval import threads

    monkeypatch.setattr(threads, "_applied", None)
    monkeypatch.setattr(threads, "_explicit", False)
    before = torch.get_num_threads()
    try:
        assert [threads.default_threads(n) for n in (1, 2, 3, 4, 16)] == [1, 1, 2, 3, 15]
        monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
        assert threads.ensure_threads() == 1 == torch.get_num_threads() == threads.applied()
        assert threads.apply_threads(2) == 2 == torch.get_num_threads()
        assert threads.apply_threads(None) == 2 and threads.ensure_threads() == 2  # an explicit count stays
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="threads must be a positive integer"):
                threads.apply_threads(bad)
    finally:
        torch.set_num_threads(before)
