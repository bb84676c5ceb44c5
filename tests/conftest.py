"""Shared fixtures: where the real data is, and how to run the command line in a fresh process."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import reproduce  # noqa: F401  (TensorFlow's environment, before any test imports it)
from reproduce.recipes import tiny_options

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def _corpora_dir():
    """`CORPORA_DIR`, else `../shared/corpora` beside the clone, else the stories downloaded into tests/.data."""
    if os.environ.get("CORPORA_DIR"):
        return Path(os.environ["CORPORA_DIR"])
    if (SHARED / "corpora" / "grimm").is_dir():
        return SHARED / "corpora"
    target = REPO / "tests" / ".data"
    from reproduce.download import download_stories
    download_stories(target / "grimm", 100)           # fails loudly without a network: never a silent skip
    return target


@pytest.fixture(scope="session")
def corpora_dir():
    return _corpora_dir()


@pytest.fixture(scope="session")
def grimm_dir(corpora_dir):
    return corpora_dir / "grimm"


@pytest.fixture(scope="session")
def golden_dir():
    """The printed outputs of the book and the articles, as shipped in the package (see golden/SOURCE.md)."""
    return REPO / "reproduce" / "golden"


def run_cli(*args, cwd=None, env=None, timeout=600):
    """`python reproduce/main.py ARGS` in a fresh process; returns the CompletedProcess (text)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, str(REPO / "reproduce" / "main.py"), *map(str, args)],
                          cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


# A configuration that trains in seconds (Config.tiny): 12 stories, 2 documents x 10 iterations per step.
TINY = tiny_options("book")
