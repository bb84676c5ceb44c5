"""What a run was made with: `environment.json` in every run folder, one entry per session (start, resumes).

Python, TensorFlow and numpy versions, the CPU model and the instruction-set extensions that change
TensorFlow's kernels (and the environment variables that restrict them), the threads the session used,
the project's git commit (and whether the work tree had uncommitted changes) and the command line.
`compare` and the study report show it.
"""
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy
import tensorflow as tf

REPO = Path(__file__).resolve().parent.parent
# The extensions that select TensorFlow's and numpy's CPU kernels (oneDNN, Eigen): their presence can move floats.
KERNEL_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "neon", "asimd")
# Environment variables that change which kernels run (and so the floats): ONEDNN_MAX_CPU_ISA=AVX2 alone
# moves an AVX-512 machine's first train perplexity in the 8th digit.
KERNEL_SETTINGS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS")


def cpu():
    """(model name, kernel-relevant flags) from /proc/cpuinfo; the platform's processor string elsewhere."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    model = fields.get("model name") or fields.get("Model") or fields.get("CPU part") or platform.machine()
    return model, [flag for flag in KERNEL_FLAGS if flag in flags]


def _git():
    """The project's commit and whether tracked files differ from it; None outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": dirty}


def environment(session_config=None):
    """This process's environment as a JSON-ready dict; `session_config` the tf ConfigProto its sessions use."""
    cpu_model, cpu_flags = cpu()
    threads = None
    if session_config is not None:
        threads = {"intra_op": session_config.intra_op_parallelism_threads,
                   "inter_op": session_config.inter_op_parallelism_threads}
    return {
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name if sys.argv[0] else "python", *sys.argv[1:]],
        "python": platform.python_version(), "tensorflow": tf.__version__, "numpy": numpy.__version__,
        "platform": platform.platform(), "cpu": cpu_model, "cpu_flags": cpu_flags,
        "kernel_settings": {name: os.environ[name] for name in KERNEL_SETTINGS if name in os.environ},
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": threads,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "git": _git(),
    }


def cores_text(cores):
    """`1 core`, `2 cores`."""
    return f"{cores} core{'' if cores == 1 else 's'}"


def kernel_settings_text(entry):
    """`, ONEDNN_MAX_CPU_ISA=AVX2` for each kernel setting a session recorded; empty without one."""
    return "".join(f", {name}={value}" for name, value in (entry.get("kernel_settings") or {}).items())


def load(run_path):
    """The sessions recorded in RUN/environment.json, [] when there is none (or it is not a list)."""
    try:
        sessions = json.loads((Path(run_path) / "environment.json").read_text())
    except (OSError, ValueError):
        return []
    return [s for s in sessions if isinstance(s, dict)] if isinstance(sessions, list) else []


def record(run_path, session_config, write_json):
    """Append this session's environment to RUN/environment.json (a list: the start, then each resume);
    `write_json(path, value)` is the run folder's atomic writer."""
    path = Path(run_path) / "environment.json"
    sessions = load(run_path)
    sessions.append(environment(session_config))
    write_json(path, sessions)
    return sessions


def describe(sessions):
    """One line for reports: where the run was made (its first session) and how many sessions it took."""
    if not sessions:
        return "environment not recorded (a run made before environment.json existed)"
    first = sessions[0]
    git = first.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (with uncommitted changes)" if git.get("dirty") else "")
    threads = first.get("threads") or {}
    text = (f"{first.get('cpu')}, {cores_text(first.get('cores'))} ({threads.get('intra_op', '?')} x "
            f"{threads.get('inter_op', '?')} threads), Python {first.get('python')}, TensorFlow "
            f"{first.get('tensorflow')}, numpy {first.get('numpy')}, commit {commit}{kernel_settings_text(first)}")
    return text + (f"; resumed {len(sessions) - 1} time(s)" if len(sessions) > 1 else "")
