import pytest

from s3eval.storage import StorageError, append_lines, atomic_write_text, read_jsonl


def test_jsonl_append_and_torn_tail(tmp_path):
    path = tmp_path / "x.jsonl"
    append_lines(path, ['{"a": 1}', '{"a": 2}'])
    with open(path, "a") as handle:
        handle.write('{"a": 3')  # crash mid-line
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]


def test_broken_middle_line_is_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(StorageError, match=r"x.jsonl:2: not valid JSON"):
        list(read_jsonl(path))


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot write"):
        atomic_write_text(blocker / "sub" / "r.json", "x")
