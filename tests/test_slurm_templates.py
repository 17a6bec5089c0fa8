"""The SLURM templates parse, and keep the directives preemption and CPU-only clusters rely on."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
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


def run_ablations(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """slurm/ablations.sbatch in ``repo``, whose slurm/train.sbatch echoes what it was given."""
    outside_slurm = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "STR_"))}
    return subprocess.run(["bash", str(SLURM_DIR / "ablations.sbatch"), *args], capture_output=True,
                          text=True, check=False, env={**outside_slurm, "STR_REPO": str(repo), **env})


@pytest.fixture
def ablation_repo(tmp_path) -> Path:
    """Seven rows in configs/ablations (written out of order) and a train.sbatch that echoes."""
    (tmp_path / "slurm").mkdir()
    for stage in ("train", "test"):
        (tmp_path / "slurm" / f"{stage}.sbatch").write_text(f'echo "{stage}.sbatch $*"\n')
    rows = tmp_path / "configs" / "ablations"
    rows.mkdir(parents=True)
    for index in (3, 0, 6, 1, 5, 2, 4):
        (rows / f"{index}_row.yaml").write_text("{}\n")
    (rows / "synthetic").mkdir()
    (rows / "synthetic" / "0_str.yaml").write_text("{}\n")
    return tmp_path


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ablation_array_runs_every_row_with_every_seed_once(ablation_repo):
    runs = []
    for task in range(21):
        result = run_ablations(ablation_repo, "--trainer.max_epochs=2",
                               SLURM_ARRAY_TASK_ID=str(task))
        assert result.returncode == 0, result.stderr
        runs.append(result.stdout.splitlines()[-1])
    expected = [f"train.sbatch configs/ablations/{row}_row.yaml --seed_everything {seed} "
                "--trainer.max_epochs=2" for row in range(7) for seed in (1, 2, 3)]
    assert runs == expected


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ablation_array_takes_a_config_directory_and_seeds(ablation_repo):
    result = run_ablations(ablation_repo, "configs/ablations/synthetic", SLURM_ARRAY_TASK_ID="1",
                           STR_SEEDS="7 8")
    assert result.stdout.splitlines()[-1] == ("train.sbatch configs/ablations/synthetic/0_str.yaml "
                                              "--seed_everything 8")
    tested = run_ablations(ablation_repo, SLURM_ARRAY_TASK_ID="20", STR_STAGE="test")
    assert tested.stdout.splitlines()[-1] == "test.sbatch configs/ablations/6_row.yaml --seed_everything 3"
    beyond = run_ablations(ablation_repo, SLURM_ARRAY_TASK_ID="21")
    assert beyond.returncode == 2 and "only 21 tasks (7 rows x 3 seeds); use --array=0-20" in beyond.stderr
    not_array = run_ablations(ablation_repo, "configs/ablations")
    assert not_array.returncode == 2 and "sbatch --array=0-20" in not_array.stderr


@pytest.mark.slow
def test_local_sweep_trains_each_seed_and_compares_them(tiny_shards, tmp_path):
    from training_helpers import tiny_config, tiny_run_dir, write_config

    config = tiny_config(tiny_shards, tmp_path / "runs", experiment="sweep")
    config["trainer"]["callbacks"].append({"class_path": "callbacks.results.DatasetResultsTable"})
    config = write_config(config, tmp_path / "c.yaml")
    env = {**os.environ, "PYTHONPATH": str(SLURM_DIR.parent), "STR_SEEDS": "1 2",
           "STR_LIGHTNING": f"{sys.executable} -m str_lightning", "STR_PYTHON": sys.executable}
    out = tmp_path / "report.md"
    result = subprocess.run(["bash", str(SLURM_DIR / "local_sweep.sh"), str(out), str(config)],
                            cwd=SLURM_DIR.parent, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for seed in (1, 2):
        assert (tiny_run_dir(tmp_path / "runs", "sweep", seed) / "results" / "test_results.csv").is_file()
    with out.with_suffix(".csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert (row["method"], row["n"], row["seeds"]) == ("sweep", "2", "1 2")
    assert float(row["toy/pa_mpjpe/std"]) > 0
