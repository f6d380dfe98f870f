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
