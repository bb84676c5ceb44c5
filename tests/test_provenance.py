"""environment.json: what each session of a run was made with."""
import json
import platform
import subprocess

import tensorflow as tf

from reproduce import provenance

from conftest import REPO
from test_train import _train


def test_every_session_of_a_run_records_its_environment(grimm_dir, tmp_path):
    run_dir = tmp_path / "run"
    _train(grimm_dir, run_dir, "--num-steps", "1")
    _train(grimm_dir, run_dir, "--num-steps", "2", "--resume")
    sessions = json.loads((run_dir / "environment.json").read_text())
    assert len(sessions) == 2                                      # the start and the resume
    first = sessions[0]
    assert first["python"] == platform.python_version() and first["tensorflow"] == tf.__version__
    assert first["command"][:2] == ["main.py", "train"] and "--resume" in sessions[1]["command"]
    assert first["threads"]["intra_op"] >= 1 and first["threads"]["inter_op"] == 2
    assert first["cpu"] and isinstance(first["cpu_flags"], list)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:                                       # a checkout: the commit it ran
        assert first["git"]["commit"] == head.stdout.strip() and isinstance(first["git"]["dirty"], bool)
    else:
        assert first["git"] is None


def test_a_setting_that_restricts_the_kernels_is_recorded_and_named(monkeypatch):
    monkeypatch.delenv("TF_DETERMINISTIC_OPS", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    entry = provenance.environment()
    assert entry["kernel_settings"].get("ONEDNN_MAX_CPU_ISA") == "AVX2"
    assert "TF_DETERMINISTIC_OPS" not in entry["kernel_settings"]
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in provenance.describe([entry])
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert "ONEDNN_MAX_CPU_ISA" not in provenance.describe([provenance.environment()])
