"""s3eval: evaluation harness for the S³ multimodal dialog model (MMMU and AI-Journey-style tasks).

``s3eval.evaluate(model, tasks=[…], output_dir=…)`` evaluates a model object in-process (e.g. from a training
loop); the command line is ``s3eval --help``."""

__version__ = "0.1.0"


def evaluate(model, tasks, output_dir, **options):
    """See ``s3eval.api.evaluate`` (imported on first call, so ``import s3eval`` stays light)."""
    from .api import evaluate as _evaluate

    return _evaluate(model, tasks, output_dir, **options)
