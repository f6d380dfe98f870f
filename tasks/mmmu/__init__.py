"""MMMU task variants: ``mmmu_{dev,val,test}`` (official first-image baseline) and
``mmmu_{dev,val,test}_all_images`` (every referenced image, in reference order). Select subjects or
disciplines with ``--task-arg subjects=Art,Science``."""

from s3eval.task_registry import register_task

from .task import make_factory

_SPLITS = {"dev": "dev", "val": "validation", "test": "test"}

for _short, _split in _SPLITS.items():
    for _suffix, _mode in (("", "first"), ("_all_images", "referenced")):
        _info, _factory = make_factory(_split, _mode, f"mmmu_{_short}{_suffix}")
        register_task(_info)(_factory)
