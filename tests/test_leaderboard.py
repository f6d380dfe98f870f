import multiprocessing

import pytest

from s3eval import leaderboard
from s3eval.leaderboard import COLUMNS, LeaderboardError


def make_row(i, writer="w"):
    return {"task": "mmmu_val", "model": f"{writer}-{i}", "n": 900, "n_fallback": 2, "n_error": 0, "n_missing": 0,
            "accuracy": 0.367, "strict_accuracy": 0.365, "expected_accuracy": 0.366, "accuracy_valid": 0.367,
            "group_accuracy": '{"Art and Design": 0.525, "Business": 0.227}', "checkpoint": "dir, with \"quotes\""}  # fmt: skip


def _append_many(args):
    path, writer = args
    for i in range(150):
        leaderboard.append_rows(path, [make_row(i, writer)])


def test_concurrent_appends_never_tear_rows(tmp_path):
    path = tmp_path / "lb.csv"
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_append_many, [(path, "a"), (path, "b")])
    frame = leaderboard.read(path)
    assert len(frame) == 300
    assert sorted(frame["model"]) == sorted([f"a-{i}" for i in range(150)] + [f"b-{i}" for i in range(150)])
    assert set(frame["checkpoint"]) == {'dir, with "quotes"'}
    assert path.read_text().count("timestamp,run_id") == 1


def test_torn_last_row_does_not_swallow_the_next(tmp_path):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [make_row(0)])
    with open(path, "a") as handle:
        handle.write("2026-01-01,run,partial")  # a writer killed mid-row
    leaderboard.append_rows(path, [make_row(1)])
    assert leaderboard.read(path)["model"].tolist() == ["w-0", "w-1"]
    assert (tmp_path / "lb.csv.torn").read_text() == "2026-01-01,run,partial\n"


def test_broken_rows_are_named(tmp_path):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [make_row(0)])
    text = path.read_text().replace("0.367", "abc", 1)
    path.write_text(text)
    with pytest.raises(LeaderboardError, match=r"lb.csv:2: column 'accuracy' is not a number: 'abc'"):
        leaderboard.read(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(LeaderboardError, match="line 1 is not the s3eval leaderboard header"):
        leaderboard.read(path)
    with pytest.raises(LeaderboardError, match="no leaderboard at"):
        leaderboard.read(tmp_path / "none.csv")


def test_format_table_sorts_by_the_headline_and_shows_recorded_intervals(tmp_path):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [
        {**make_row(0), "run_id": "r0", "accuracy": 0.60, "score": 0.30},
        {**make_row(1), "run_id": "r1", "accuracy": 0.10, "score": 0.50, "ci_low": 0.467, "ci_high": 0.533,
         "ci_method": "wilson"},
    ])  # fmt: skip
    table = leaderboard.format_table(leaderboard.read(path))
    assert table.index("w-1") < table.index("w-0") and "50.0" in table and "r1" in table
    assert "46.7–53.3" in table and table.count("–") == 1 + leaderboard.FOOTNOTE.count("–")
    assert leaderboard.format_table(leaderboard.read(path), model="w-0").count("w-") == 1
    assert leaderboard.format_table(leaderboard.read(path), task="other") == "(no rows)"
    assert max(len(line) for line in table.splitlines()[:3]) < 120  # compact by default
    assert "checkpoint" in leaderboard.format_table(leaderboard.read(path), wide=True)
    markdown = leaderboard.format_table(leaderboard.read(path), markdown=True).splitlines()
    assert markdown[0].startswith("| task | run_id | model |") and markdown[1].startswith("|---|")
    assert markdown[2].split(" | ")[2] == "w-1" and len(markdown) == 6 and markdown[-1] == leaderboard.FOOTNOTE


def test_markdown_escapes_html_in_names(tmp_path):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [{**make_row(0), "model": "<img src=x onerror=alert(1)>|x"}])
    markdown = leaderboard.format_table(leaderboard.read(path), markdown=True)
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;\\|x" in markdown


def test_unknown_column_is_rejected(tmp_path):
    with pytest.raises(LeaderboardError, match="unknown leaderboard columns"):
        leaderboard.append_rows(tmp_path / "lb.csv", [{"nope": 1}])
    assert len(COLUMNS) == 33 and COLUMNS[-1] == "media"


def test_ablated_rows_show_their_media_mode(tmp_path):
    path = tmp_path / "lb.csv"
    leaderboard.append_rows(path, [{**make_row(0), "run_id": "kept", "media": "keep"}])
    plain = leaderboard.format_table(leaderboard.read(path))
    assert "media" not in plain.splitlines()[0] and leaderboard.MEDIA_FOOTNOTE not in plain
    leaderboard.append_rows(path, [{**make_row(1), "run_id": "blind", "media": "withhold", "score": 0.25}])
    table = leaderboard.format_table(leaderboard.read(path))
    header, *rows = table.splitlines()
    assert header.split()[:4] == ["task", "run_id", "model", "media"]
    assert [row.split()[1:4] for row in rows[:2]] == [["blind", "w-1", "withhold"], ["kept", "w-0", "keep"]]
    assert table.endswith(leaderboard.FOOTNOTE + "\n" + leaderboard.MEDIA_FOOTNOTE)
    markdown = leaderboard.format_table(leaderboard.read(path), markdown=True).splitlines()
    assert markdown[0].startswith("| task | run_id | model | media |") and markdown[-1] == leaderboard.MEDIA_FOOTNOTE
    assert " media " in leaderboard.format_table(leaderboard.read(path), wide=True).splitlines()[0]


def test_row_for_fills_the_media_column_with_the_runs_mode():
    from s3eval.results import Headline, TaskResult

    overall = {"n_fallback": 0, "n_error": 0, "n_missing": 0, "accuracy": 0.5, "strict_accuracy": 0.5,
               "expected_accuracy": 0.5, "accuracy_valid": 0.5, "n": 2}  # fmt: skip
    result = TaskResult(task="t", arguments={}, data=None, settings={}, metric="parser", metric_version="1",
                        kind="right_wrong", unit="item", has_gold=True, leaderboard_group=None,
                        summary={"overall": overall, "groups": {}}, records="samples_t.jsonl",
                        headline=Headline(metric="accuracy", score=0.5, n_units=2, unit="item", kind="right_wrong",
                                          aggregation="mean", definition="d"))  # fmt: skip
    run = {"timestamp": "2026-01-01", "run_id": "r", "model": {"name": "m"}, "config_hash": "h", "git_commit": "g",
           "parser": {"name": "p", "version": "1"}, "config": {"media": "shuffle"}}  # fmt: skip
    assert leaderboard.row_for(run, result, "dir")["media"] == "shuffle"
    assert leaderboard.row_for({**run, "config": {}}, result, "dir")["media"] == "keep"  # written before the field


@pytest.mark.parametrize("width", [24, 26, 32])
def test_an_older_leaderboard_is_upgraded_in_place_with_a_backup(tmp_path, width):
    path = tmp_path / "lb.csv"
    old_header = ",".join(COLUMNS[:width])
    old_row = ",".join(["2026-01-01", "old-run", "s3"] + [""] * 12 + ["0.5"] + [""] * (width - 16))
    path.write_text(old_header + "\n" + old_row + "\n")
    frame = leaderboard.read(path)  # readable as it is
    assert list(frame.columns) == list(COLUMNS) and frame["accuracy"].tolist() == [0.5] and frame["score"].isna().all()
    leaderboard.append_rows(path, [make_row(1)], unique_on=("run_id", "timestamp", "task"))
    version = {24: 1, 26: 2, 32: 3}[width]
    assert (tmp_path / f"lb.csv.v{version}.bak").read_text() == old_header + "\n" + old_row + "\n"
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and lines[1] == old_row + "," * (len(COLUMNS) - width) and len(lines) == 3
    assert leaderboard.read(path)["run_id"].tolist() == ["old-run", ""]
