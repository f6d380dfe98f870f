import sys
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


def s3eval_cache_dir(config) -> Path:
    """The test suite's s3eval cache: one folder for the whole session, kept between sessions —
    ``.pytest_cache/d/s3eval-cache`` (git-ignored; ``pytest --cache-clear`` empties it). Built-in assets (the tiny
    release, the trained sanity release, the built-in sets) are made there by the same content-keyed code the CLI
    uses for the user cache, so each is built once and a second ``pytest`` builds nothing; a code change gives a new
    key, hence a rebuild. The tests never write into the user's own cache (~/.cache/s3eval)."""
    if not hasattr(config, "_s3eval_cache_dir"):
        if getattr(config, "cache", None) is not None:  # pytest's cache plugin (absent with -p no:cacheprovider)
            folder = Path(config.cache.mkdir("s3eval-cache"))
        else:  # this session only
            import shutil
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="s3eval-cache-"))
            config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
        config._s3eval_cache_dir = folder
    return config._s3eval_cache_dir


@pytest.fixture(autouse=True)
def _s3eval_cache(request):
    """Every test starts with the suite's cache as the cache root (a test that sets another one — the CLI's
    --cache-dir, tests/test_cache.py — cannot leak it into the next test)."""
    from s3eval.cache import set_cache_root

    set_cache_root(s3eval_cache_dir(request.config))
    yield
    set_cache_root(s3eval_cache_dir(request.config))


def pytest_configure(config):
    from s3eval.cache import set_cache_root

    set_cache_root(s3eval_cache_dir(config))


def pytest_runtest_setup(item):
    """torch's thread count by the project's rule (s3eval.threads), as the CLI applies it, once torch is imported:
    torch's default (a thread per core) stalls when other processes share the cores."""
    from s3eval import threads

    if "torch" in sys.modules and threads.applied() is None:
        threads.apply_threads(None)


@pytest.fixture(scope="session")
def tiny_release(request):
    """The built-in tiny S³ release (checkpoint, base): built by the project's builder into the suite's cache,
    once (see s3eval_cache_dir). Tests must not change its files (copy or symlink them: tests/test_faults_model.py)."""
    from s3eval.cache import set_cache_root
    from s3eval.models.s3.builder import ensure_builtin

    set_cache_root(s3eval_cache_dir(request.config))  # session fixtures are set up before the autouse one
    return ensure_builtin()


@pytest.fixture(scope="session")
def sanity_release(request):
    """The trained sanity release (checkpoint, base), from the suite's cache: trained once (≈ 20 s), reused by
    later sessions until its code changes."""
    from s3eval.cache import set_cache_root
    from tasks.sanity.checkpoint import ensure_sanity

    set_cache_root(s3eval_cache_dir(request.config))
    return ensure_sanity()


@pytest.fixture(scope="session")
def tiny_model(tiny_release):
    from s3eval.models.s3.model import S3Model
    from s3eval.models.s3.spec import S3Spec

    checkpoint, base = tiny_release
    return S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), "device": "cpu"}))


@pytest.fixture(scope="session")
def sanity_steps(request, sanity_release):
    """The sanity training's checkpoint series (checkpoint folders in step order, base): written by the run that
    trained ``sanity_release``, in the same cache entry, so nothing is trained twice."""
    from s3eval.cache import set_cache_root
    from tasks.sanity.steps import ensure_sanity_steps

    set_cache_root(s3eval_cache_dir(request.config))
    return ensure_sanity_steps()
