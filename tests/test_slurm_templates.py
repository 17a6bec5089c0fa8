"""The SLURM templates parse, and keep the directives preemption and CPU-only clusters rely on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SLURM_DIR = Path(__file__).resolve().parents[1] / "slurm"
SCRIPTS = sorted([*SLURM_DIR.glob("*.sh"), *SLURM_DIR.glob("*.sbatch")])


def directives(path: Path) -> list[str]:
    return re.findall(r"^#SBATCH\s+(\S+)", path.read_text(), flags=re.MULTILINE)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["train.sbatch", "ablations.sbatch"])
def test_training_templates_requeue_on_a_signal_to_the_tasks(name):
    found = directives(SLURM_DIR / name)
    assert "--requeue" in found and "--open-mode=append" in found
    signal = [d for d in found if d.startswith("--signal=")]
    # "B:" would signal only the batch shell, never the Python tasks.
    assert len(signal) == 1 and re.fullmatch(r"--signal=(SIG)?USR[12]@\d+", signal[0]), signal


def test_templates_assume_no_gpus_and_no_paths_outside_the_repo():
    assert len(SCRIPTS) >= 4
    for script in SCRIPTS:
        found = directives(script)
        assert not [d for d in found if d.startswith(("--gres", "--gpus", "--partition"))], script
        assert not re.search(r"(^|[\s=])/(home|scratch|data|work|tmp)/", script.read_text()), script
