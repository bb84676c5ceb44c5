"""Shared fixtures: where the real data is, how to run the command line (in a fresh process, or in this one),
and one tiny trained book run for the tests that only read it."""
import contextlib
import io
import os
import subprocess
import sys
import tempfile
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


def run_here(*args, cwd=None, env=None):
    """`python reproduce/main.py ARGS` in this process (`reproduce.main.main`), for a test that needs no fresh
    process: the CompletedProcess of `run_cli` without the seconds TensorFlow's import takes. Its stderr holds
    what Python printed and what the native code wrote to file descriptor 2 (TensorFlow's own log lines). The
    working folder, the environment and sys.argv are set for the call and restored after it."""
    from reproduce.main import main
    argv = [str(arg) for arg in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_environ, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    with tempfile.TemporaryFile() as native_stderr:
        saved_fd2 = os.dup(2)
        try:
            os.environ.update(env or {})
            os.chdir(cwd or REPO)
            sys.argv = ["main.py", *argv]                   # what environment.json records as the command
            os.dup2(native_stderr.fileno(), 2)
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    returncode = main(argv)
                except SystemExit as stop:                  # argparse: --help, a usage error
                    returncode = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        finally:
            os.dup2(saved_fd2, 2)
            os.close(saved_fd2)
            sys.argv = saved_argv
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_environ)
        native_stderr.seek(0)
        native = native_stderr.read().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["main.py", *argv], returncode, stdout.getvalue(), stderr.getvalue() + native)


# A configuration that trains in seconds (Config.tiny): 12 stories, 2 documents x 10 iterations per step.
TINY = tiny_options("book")


@pytest.fixture(scope="session")
def tiny_book_run(grimm_dir, tmp_path_factory):
    """A book run of 4 tiny steps (seed 3), trained once in a fresh process: (its folder, the CompletedProcess).
    Tests read it; one that changes it works on a copy (shutil.copytree into tmp_path)."""
    run_dir = tmp_path_factory.mktemp("tiny-book") / "run"
    result = run_cli("train", "--stories-dir", grimm_dir, *TINY, "--run-dir", run_dir, "--num-steps", "4",
                     "--seed", "3")
    assert result.returncode == 0, result.stderr
    return run_dir, result
