from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MMMU_MINI = SHARED / "mmmu_mini"
OFFICIAL = SHARED / "mmmu_data" / "official_repo"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not beside the project)")
    return path


@pytest.fixture
def mmmu_mini() -> Path:
    return need(MMMU_MINI)


@pytest.fixture
def official() -> Path:
    return need(OFFICIAL)


def pytest_addoption(parser):
    parser.addoption("--update-snapshots", action="store_true", help="rewrite tests/snapshots/* from the code")


@pytest.fixture
def update_snapshots(request) -> bool:
    return request.config.getoption("--update-snapshots")


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory):
    """A tiny S³ release (checkpoint, base) built by the project's builder, once per test session."""
    from s3eval.models.s3.builder import build_tiny_release

    return build_tiny_release(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_release):
    from s3eval.models.s3.model import S3Model
    from s3eval.models.s3.spec import S3Spec

    checkpoint, base = tiny_release
    return S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), "device": "cpu"}))
