"""The run configuration: a YAML file (``--config``) whose values CLI flags override."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml

from .errors import S3evalError
from .media_ablation import KEEP, MODES, SEEDED
from .names import InvalidNameError, check_name
from .registry import did_you_mean


class ConfigError(S3evalError, ValueError):
    pass


@dataclass
class TaskSpec:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    model: str = "s3"
    model_args: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskSpec] = field(default_factory=list)
    define: list[str] = field(default_factory=list)  # YAML task definition files, loaded before the tasks
    data: Optional[str] = None  # dataset location override passed to every task
    limit: Optional[int] = None  # first N samples of each task, in canonical order
    stratified: bool = False  # with limit: N units spread across the task's groups instead of the first N
    samples: Optional[list[str]] = None  # only these sample (or unit) ids, in canonical order (s3eval.selection)
    # Requests per batch the model runs at once (a GPU batch for s3): a whole number, "auto" (grow until memory
    # says stop, remembered) or None (the backend's default: auto for s3, the whole hand-off for scripted models).
    # A pure throughput knob: not in result_hash(), so a run resumed with another batch size continues.
    batch_size: Optional[Union[int, str]] = None
    window: int = 4096  # requests the runner hands the model per call (bounds memory); not in result_hash()
    max_new_tokens: Optional[int] = None  # overrides the task's and the model's default
    fallback_seed: int = 42
    output_dir: str = "results/runs"
    leaderboard: Optional[str] = "results/leaderboard.csv"  # None: do not append
    run_name: Optional[str] = None
    threads: Optional[int] = None  # torch CPU threads (s3eval.threads); None: the rule. Not in result_hash()
    cache_dir: Optional[str] = None  # the user cache of built-in assets (s3eval.cache); None: the default place
    media: str = KEEP  # media ablation (s3eval.media_ablation): keep, withhold, noise or shuffle
    media_seed: int = 0  # seed of the noise and shuffle ablations

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def result_hash(self) -> str:
        """Hash of what determines the results: everything but where they are written."""
        from .provenance import canonical_hash

        values = what_decides_results(self.to_dict())
        if not values["define"]:
            del values["define"]  # configs without definition files hash as they did before the field existed
        for key, unset in (("stratified", False), ("samples", None)):
            if values.get(key) == unset:
                del values[key]  # likewise for configs that select no items
        if values["media"] == KEEP:
            del values["media"]  # likewise for runs that send the media as given
        if values["media_seed"] == 0 or self.media not in SEEDED:
            del values["media_seed"]  # keep and withhold draw nothing: their seed changes no result
        return canonical_hash(values)

    def validate(self) -> None:
        if not self.tasks:
            raise ConfigError("no tasks: pass --tasks NAME[,NAME…] or list them under `tasks:` in the config")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be a positive integer, got {self.limit}")
        if not isinstance(self.stratified, bool):
            raise ConfigError(f"stratified must be true or false, got {self.stratified!r}")
        if self.stratified and self.limit is None:
            raise ConfigError("stratified needs a limit: --limit N --stratified takes N items spread across groups")
        if self.samples is not None and (not isinstance(self.samples, list) or not self.samples
                                         or not all(isinstance(i, str) and i for i in self.samples)):
            raise ConfigError(f"samples must be a non-empty list of sample ids, got {self.samples!r}")
        self.batch_size = parse_batch_size(self.batch_size)
        given = self.model_args.get("batch_size")
        if self.batch_size is not None and given is not None and str(given).strip() != str(self.batch_size):
            raise ConfigError(f"the GPU batch is given twice: batch_size {self.batch_size} (--batch-size) and "
                              f"model argument batch_size={given}; give it once, with --batch-size")  # fmt: skip
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"window must be a positive integer, got {self.window!r}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer, got {self.threads!r}")
        if self.media not in MODES:
            raise ConfigError(f"media must be one of {', '.join(MODES)} (--media MODE), got {self.media!r}")
        if isinstance(self.media_seed, bool) or not isinstance(self.media_seed, int) or self.media_seed < 0:
            raise ConfigError(f"media_seed must be a non-negative integer (--media-seed N), got {self.media_seed!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, str):
            raise ConfigError(f"cache_dir must be a folder path, got {self.cache_dir!r}")
        if self.run_name is not None:
            try:
                check_name(self.run_name, "run name (--run-name)")
            except InvalidNameError as exc:
                raise ConfigError(str(exc)) from exc


_FIELDS = {f.name for f in fields(RunConfig)}
_OUTPUT_FIELDS = {"output_dir", "leaderboard", "run_name", "cache_dir"}
_THROUGHPUT_FIELDS = {"batch_size", "window", "threads"}  # how fast, not what: left out of result_hash()
_THROUGHPUT_MODEL_ARGS = {"batch_size"}


def what_decides_results(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config's values (``RunConfig.to_dict()``, or as results.json records it) without where or how fast the run
    was written: two runs with equal such values asked the same model the same questions."""
    values = {k: v for k, v in config.items() if k not in _OUTPUT_FIELDS | _THROUGHPUT_FIELDS}
    # Batch sizes do not change results (fp32 outputs are batch-invariant), so they never change the run id.
    values["model_args"] = {k: v for k, v in (values.get("model_args") or {}).items()
                            if k not in _THROUGHPUT_MODEL_ARGS}  # fmt: skip
    return values


def parse_batch_size(value: Any) -> Optional[Union[int, str]]:
    """``--batch-size``/``batch_size:``: a positive whole number (also as text), ``auto``, or None (unset)."""
    if value is None or value == "auto":
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if not isinstance(value, bool) and text.isdigit() and int(text) >= 1:
        return int(text)
    raise ConfigError(f"batch_size must be a positive whole number or auto, got {value!r}")


def _task_spec(item: Any, where: str) -> TaskSpec:
    if isinstance(item, str):
        return TaskSpec(item)
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        extra = set(item) - {"name", "args"}
        if extra:
            raise ConfigError(f"{where}: a task entry takes `name` and `args`, not {sorted(extra)}")
        args = item.get("args") or {}
        if not isinstance(args, Mapping):
            raise ConfigError(f"{where}: `args` of task {item['name']!r} must be a mapping")
        return TaskSpec(item["name"], dict(args))
    raise ConfigError(f"{where}: a task is a name or a mapping with `name` and `args`, got {item!r}")


def config_from_mapping(data: Mapping[str, Any], where: str = "config") -> RunConfig:
    for key in data:
        if key not in _FIELDS:
            raise ConfigError(f"{where}: unknown key {key!r}: {did_you_mean(key, sorted(_FIELDS))}")
    values = dict(data)
    if "tasks" in values:
        tasks = values["tasks"]
        if isinstance(tasks, str):
            tasks = [t for t in tasks.split(",") if t]
        if not isinstance(tasks, list):
            raise ConfigError(f"{where}: `tasks` must be a list")
        values["tasks"] = [_task_spec(t, f"{where}: tasks[{i}]") for i, t in enumerate(tasks)]
    if isinstance(values.get("define"), str):
        values["define"] = [values["define"]]
    if "define" in values and not all(isinstance(d, str) for d in values["define"] or []):
        raise ConfigError(f"{where}: `define` must be a list of task definition file paths")
    if "model_args" in values and not isinstance(values["model_args"], Mapping):
        raise ConfigError(f"{where}: `model_args` must be a mapping")
    if isinstance(values.get("samples"), str):  # `samples: "id1,id2"`; a YAML list may hold numbers too
        values["samples"] = [i.strip() for i in values["samples"].split(",") if i.strip()]
    if isinstance(values.get("samples"), list):
        values["samples"] = [str(i) if isinstance(i, (int, float)) and not isinstance(i, bool) else i
                             for i in values["samples"]]  # fmt: skip
    if "stratified" in values and not isinstance(values["stratified"], bool):
        values["stratified"] = parse_flag(values["stratified"], f"{where}: `stratified`")
    if "batch_size" in values:
        values["batch_size"] = parse_batch_size(values["batch_size"])
    for key in ("limit", "window", "max_new_tokens", "fallback_seed", "threads", "media_seed"):
        if values.get(key) is not None and not isinstance(values[key], int):
            raise ConfigError(f"{where}: `{key}` must be an integer, got {values[key]!r}")
    return RunConfig(**values)


def load_config(path: Path) -> RunConfig:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {path} must be a YAML mapping of settings")
    return config_from_mapping(_relative_to(Path(path).resolve().parent, data), where=str(path))


# Model arguments that name files or folders.
_PATH_MODEL_ARGS = ("checkpoint", "base", "responses", "tokenizer", "adapter", "projector", "imagebind", "feature_cache")


def _relative_to(folder: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    """Paths in a config file are relative to the file, as in task definition files. Outputs and definition
    files always are; ``data`` and model paths only where such a path exists beside the file, since they may
    also be a hub id (``MMMU/MMMU``) or a built-in name (``builtin:sanity``)."""
    values = dict(data)
    for key in ("output_dir", "leaderboard", "cache_dir"):
        if isinstance(values.get(key), str):
            values[key] = str(folder / values[key])
    if isinstance(values.get("define"), (str, list)):
        defines = [values["define"]] if isinstance(values["define"], str) else values["define"]
        values["define"] = [str(folder / d) if isinstance(d, str) else d for d in defines]

    def existing(value: Any) -> Any:
        return str(folder / value) if isinstance(value, str) and (folder / value).exists() else value

    if "data" in values:
        values["data"] = existing(values["data"])
    if isinstance(values.get("model_args"), Mapping):
        values["model_args"] = {k: existing(v) if k in _PATH_MODEL_ARGS else v for k, v in values["model_args"].items()}
    return values


def parse_flag(value: Any, name: str, error: type[Exception] = ConfigError) -> bool:
    """A boolean given as a bool or as text (true/false, yes/no, 1/0), as KEY=VALUE arguments arrive."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise error(f"{name} must be true or false, got {value!r}")


def parse_key_values(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out
