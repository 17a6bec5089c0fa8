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
    """Two benchmark files and six rows in configs/ablations (written out of order), and a
    train.sbatch and test.sbatch that echo."""
    (tmp_path / "slurm").mkdir()
    for stage in ("train", "test"):
        (tmp_path / "slurm" / f"{stage}.sbatch").write_text(f'echo "{stage}.sbatch $*"\n')
    ablations = tmp_path / "configs" / "ablations"
    (ablations / "rows").mkdir(parents=True)
    for benchmark in ("paper", "synthetic"):
        (ablations / f"{benchmark}.yaml").write_text("{}\n")
    for index in (3, 6, 1, 5, 2, 4):
        (ablations / "rows" / f"{index}_row.yaml").write_text("{}\n")
    return tmp_path


def ablation_args(benchmark: str, row: int) -> str:
    """The config arguments of an ablation row: the benchmark file, then the row's file."""
    return f"configs/ablations/{benchmark}.yaml" + (
        f" --config configs/ablations/rows/{row}_row.yaml" if row else "")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ablation_array_runs_every_row_with_every_seed_once(ablation_repo):
    runs = []
    for task in range(21):
        result = run_ablations(ablation_repo, "--trainer.max_epochs=2",
                               SLURM_ARRAY_TASK_ID=str(task))
        assert result.returncode == 0, result.stderr
        runs.append(result.stdout.splitlines()[-1])
    expected = [f"train.sbatch {ablation_args('paper', row)} --seed_everything {seed} "
                "--trainer.max_epochs=2" for row in range(7) for seed in (1, 2, 3)]
    assert runs == expected


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ablation_array_takes_a_benchmark_file_and_seeds(ablation_repo):
    result = run_ablations(ablation_repo, "configs/ablations/synthetic.yaml",
                           SLURM_ARRAY_TASK_ID="1", STR_SEEDS="7 8")
    assert result.stdout.splitlines() == [
        "ablations.sbatch: array task 1 of 14 -> train configs/ablations/synthetic.yaml, seed 8",
        "train.sbatch configs/ablations/synthetic.yaml --seed_everything 8"]
    row = run_ablations(ablation_repo, "configs/ablations/synthetic.yaml", "--x=1",
                        SLURM_ARRAY_TASK_ID="5", STR_SEEDS="7 8")
    assert row.stdout.splitlines() == [
        ("ablations.sbatch: array task 5 of 14 -> train configs/ablations/synthetic.yaml + "
         "configs/ablations/rows/2_row.yaml, seed 8"),
        f"train.sbatch {ablation_args('synthetic', 2)} --seed_everything 8 --x=1"]
    tested = run_ablations(ablation_repo, SLURM_ARRAY_TASK_ID="20", STR_STAGE="test")
    assert tested.stdout.splitlines()[-1] == (f"test.sbatch {ablation_args('paper', 6)} "
                                              "--seed_everything 3")
    beyond = run_ablations(ablation_repo, SLURM_ARRAY_TASK_ID="21")
    assert beyond.returncode == 2 and "only 21 tasks (7 rows x 3 seeds); use --array=0-20" in beyond.stderr
    missing = run_ablations(ablation_repo, "configs/ablations/other.yaml", SLURM_ARRAY_TASK_ID="0")
    assert missing.returncode == 2 and "configs/ablations/other.yaml not found" in missing.stderr
    not_array = run_ablations(ablation_repo, "configs/ablations/paper.yaml")
    assert not_array.returncode == 2 and "sbatch --array=0-20" in not_array.stderr
    assert not_array.stdout.split(":", 2)[2].split() == [
        "configs/ablations/paper.yaml", *(f"configs/ablations/rows/{row}_row.yaml"
                                          for row in range(1, 7))]


FAKE_CLI = '#!/usr/bin/env bash\necho "$*" >> "$(dirname "$0")/calls"\n'  # records each command
FAKE_PYTHON = "#!/usr/bin/env bash\ncat > /dev/null\necho runs/p/e/seed1\n"  # a run directory


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_local_sweep_runs_a_benchmark_file_and_each_row_on_it(ablation_repo):
    fakes = {}
    for name, text in (("str-lightning", FAKE_CLI), ("python", FAKE_PYTHON)):
        fakes[name] = ablation_repo / f"fake-{name}"
        fakes[name].write_text(text)
        fakes[name].chmod(0o755)
    env = {**os.environ, "STR_SEEDS": "1", "STR_LIGHTNING": str(fakes["str-lightning"]),
           "STR_PYTHON": str(fakes["python"])}
    result = subprocess.run(["bash", str(SLURM_DIR / "local_sweep.sh"), "out.md", "--ablations",
                             "configs/ablations/synthetic.yaml", "--", "--x=1"],
                            cwd=ablation_repo, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    calls = (ablation_repo / "calls").read_text().splitlines()
    assert [c for c in calls if c.startswith("fit") and "--print_config" not in c] == [
        f"fit --config {ablation_args('synthetic', row)} --seed_everything 1 --ckpt_path auto --x=1"
        for row in range(7)]
    assert calls[-1] == "compare " + " ".join(["runs/p/e/seed1"] * 7) + " --out out.md"


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
