"""slurm/selftest.sh against a real local SLURM (installed with apt when missing)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="starting slurmctld/slurmd/munged needs root")
def test_slurm_selftest_passes():
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(REPO / "slurm" / "selftest.sh")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=1800, check=False)
    summary = result.stdout[result.stdout.rfind("====="):]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "ALL PASSED" in summary and summary.count("PASS ") == 4, summary
