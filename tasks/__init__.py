"""Task plugins. Each submodule registers its tasks with ``s3eval.task_registry.register_task`` on import and
must stay light at import time (no torch, no data loading)."""
