import json

import pytest

from s3eval.cli import main
from s3eval.config import ConfigError, config_from_mapping, load_config
from s3eval.registry import Registry, UnknownNameError


def test_yaml_config_and_validation(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: replay\nmodel_args: {responses: r.json}\ntasks:\n  - mmmu_val\n"
                    "  - {name: mmmu_dev, args: {subjects: [Art, Math]}}\nlimit: 5\n")  # fmt: skip
    cfg = load_config(path)
    assert cfg.model == "replay" and cfg.limit == 5
    assert [(t.name, t.args) for t in cfg.tasks] == [("mmmu_val", {}), ("mmmu_dev", {"subjects": ["Art", "Math"]})]
    with pytest.raises(ConfigError, match="unknown key 'limt': did you mean 'limit'"):
        config_from_mapping({"limt": 3})
    with pytest.raises(ConfigError, match="`limit` must be an integer"):
        config_from_mapping({"limit": "3"})
    path.write_text("tasks: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)


def test_registry_did_you_mean():
    registry = Registry("model")
    registry.register("constant", "s3eval.models.scripted:ConstantModel")
    assert registry.get("constant").__name__ == "ConstantModel"  # lazy import on first use
    with pytest.raises(UnknownNameError, match="unknown model 'constnt': did you mean 'constant'"):
        registry.get("constnt")


def test_cli_unknown_task_exits_2_with_suggestion(capsys):
    assert main(["run", "--tasks", "mmmu_vall"]) == 2
    assert "unknown task 'mmmu_vall': did you mean 'mmmu_val'" in capsys.readouterr().err


def test_cli_run_with_config_overridden_by_flags(tmp_path, mmmu_mini, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: constant\nmodel_args: {{answer: C}}\ntasks: [mmmu_dev]\nlimit: 50\n"
                      f"output_dir: {tmp_path / 'runs'}\nleaderboard: {tmp_path / 'lb.csv'}\n")  # fmt: skip
    code = main(["run", "--config", str(config), "--tasks", "mmmu_val", "--data", str(mmmu_mini), "--limit", "6",
                 "--task-arg", "subjects=Science", "--run-name", "r1", "--quiet"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "mmmu_val: accuracy" in out and "(" in out
    results = json.loads((tmp_path / "runs" / "r1" / "results.json").read_text())
    assert results["config"]["limit"] == 6 and results["config"]["model_args"] == {"answer": "C"}
    assert results["tasks"]["mmmu_val"]["settings"]["subjects"] == ["Biology", "Chemistry", "Geography", "Math", "Physics"]
    assert main(["leaderboard", "--path", str(tmp_path / "lb.csv")]) == 0
    assert "mmmu_val" in capsys.readouterr().out
    assert main(["rescore", str(tmp_path / "runs" / "r1"), "--output", str(tmp_path / "s.json")]) == 0
    rescored = json.loads((tmp_path / "s.json").read_text())
    assert rescored["mmmu_val"]["summary"] == results["tasks"]["mmmu_val"]["summary"]
    assert rescored["mmmu_val"]["arguments"] == {"subjects": "Science"}


def test_cli_rescore_official(official, capsys):
    code = main(["rescore", str(official / "example_outputs/qwen_vl/total_val_output.json"), "--task", "mmmu_val",
                 "--answer-key", str(official / "answer_dict_val.json"), "--task-arg", "answer_key=pre-2023-12-14"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "mmmu_val: task rebuilt from flags (answer_key=pre-2023-12-14)"
    assert out[1].startswith("mmmu_val: accuracy 35.9 (323/900)")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["rescore", str(tmp_path / "missing.json"), "--task", "mmmu_val"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["run", "--tasks", "mmmu_val", "--model", "replay"]) == 2
    assert "needs --model-arg responses=" in capsys.readouterr().err
    assert main(["leaderboard", "--path", str(tmp_path / "none.csv")]) == 2


def test_help_mentions_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "rescore", "leaderboard", "tasks"):
        assert command in out


def test_paths_in_a_config_file_are_relative_to_the_file(tmp_path):
    folder = tmp_path / "configs"
    (folder / "snap").mkdir(parents=True)
    (folder / "run.yaml").write_text("model: s3\nmodel_args: {checkpoint: builtin:sanity, base: snap}\n"
                                     "tasks: [mmmu_val]\ndata: snap\noutput_dir: out\nleaderboard: out/lb.csv\n"
                                     "define: [defs.yaml]\n")  # fmt: skip
    cfg = load_config(folder / "run.yaml")
    assert (cfg.data, cfg.output_dir, cfg.leaderboard) == (str(folder / "snap"), str(folder / "out"),
                                                           str(folder / "out" / "lb.csv"))  # fmt: skip
    assert cfg.define == [str(folder / "defs.yaml")]
    # A hub id or a built-in name is not a path beside the file: left as given.
    assert cfg.model_args == {"checkpoint": "builtin:sanity", "base": str(folder / "snap")}
    (folder / "hub.yaml").write_text("tasks: [mmmu_val]\ndata: MMMU/MMMU\n")
    assert load_config(folder / "hub.yaml").data == "MMMU/MMMU"


def test_threads_and_cache_dir_reach_their_modules_and_leave_the_run_hash_alone(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("s3eval.runner.apply_threads", lambda n: seen.setdefault("threads", n))
    monkeypatch.setattr("s3eval.runner.set_cache_root", lambda p: seen.setdefault("cache", p))
    common = ["run", "--model", "constant", "--tasks", "sanity_image", "--limit", "2", "--output-dir",
              str(tmp_path / "runs"), "--no-leaderboard", "--quiet"]  # fmt: skip
    assert main([*common, "--threads", "1", "--cache-dir", str(tmp_path / "c")]) == 0
    assert seen == {"threads": 1, "cache": tmp_path / "c"}
    assert main([*common]) == 0  # the same run: threads and cache folder are not part of its identity
    assert len(list((tmp_path / "runs").iterdir())) == 1
    assert main([*common, "--threads", "0"]) == 2
