"""s3eval: evaluation harness for the S³ multimodal dialog model (MMMU and AI-Journey-style tasks)."""

__version__ = "0.1.0"
