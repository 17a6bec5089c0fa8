"""What a person reads on the console: real runs of ``python -m str_lightning`` in subprocesses."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runners import run_command
from training_helpers import tiny_config, tiny_run_dir, write_config

REPO = Path(__file__).resolve().parents[1]
CONSOLE_ENV = {"OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
SILENCED = ("LeafSpec", "`IterableDataset` has `__len__`", "litlogger",
            "anonymous setting has no effect", "git root")


@pytest.fixture(scope="module")
def fitted(tiny_shards, tmp_path_factory):
    """A tiny run fitted with the progress bar on and two test datasets; its fit output."""
    root = tmp_path_factory.mktemp("console")
    config = tiny_config(tiny_shards, root / "runs", max_steps=2, steps_per_epoch=2, logger=True)
    config["trainer"]["enable_progress_bar"] = True
    val = str(tiny_shards / "val")
    config["data"]["test_datasets"] = {"toy": val, "toy-dark": val}
    config["model"]["init_args"]["eval_protocols"]["toy-dark"] = "synthetic"
    path = write_config(config, root / "config.yaml")
    fit = run_command("fit", "--config", str(path), env=CONSOLE_ENV)
    assert fit.returncode == 0, fit.stderr[-3000:]
    return path, tiny_run_dir(root / "runs"), fit


@pytest.fixture(scope="module")
def tested(fitted):
    path, run_dir, _ = fitted
    test = run_command("test", "--config", str(path), "--ckpt_path", "best", env=CONSOLE_ENV)
    assert test.returncode == 0, test.stderr[-3000:]
    return run_dir, test


def logged_test_metrics(run_dir: Path) -> dict[str, float]:
    """The last value of every column of the newest CSV logger file (what the test logged)."""
    files = sorted(run_dir.glob("csv/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    values: dict[str, float] = {}
    with files[-1].open(newline="") as handle:
        for row in csv.DictReader(handle):
            values.update({k: float(v) for k, v in row.items() if k.startswith("test/") and v})
    return values


@pytest.mark.slow  # one fit and one test in subprocesses (~1 min on 2 cores)
def test_test_prints_one_table_per_dataset_in_mm(tested):
    run_dir, result = tested
    assert "Test metric" not in result.stdout and "────" not in result.stdout  # Lightning's table
    logged = logged_test_metrics(run_dir)
    for dataset in ("toy", "toy-dark"):
        frames = int(logged[f"test/{dataset}/frames"])
        assert f"test · {dataset} · {frames:,} frames" in result.stdout
        block = result.stdout.split(f"test · {dataset} ·", 1)[1].split("\n\n", 1)[0]
        for metric, label, unit in (("pa_mpjpe", "PA-MPJPE", "mm"), ("mpjpe", "MPJPE", "mm"),
                                    ("mpvpe", "MPVPE", "mm"), ("accel", "Accel", "mm/frame²")):
            shown = re.search(rf"^  {label} +(\d+\.\d) {unit}$", block, re.MULTILINE)
            assert shown, block
            # the console rounds; the logged value keeps its full precision
            assert float(shown.group(1)) == pytest.approx(logged[f"test/{dataset}/{metric}"],
                                                          abs=0.05 + 1e-9)
            assert logged[f"test/{dataset}/{metric}"] != round(logged[f"test/{dataset}/{metric}"], 1)


@pytest.mark.slow  # one fit and one test in subprocesses (~1 min on 2 cores)
def test_runs_do_not_print_the_known_harmless_notices(fitted, tested):
    for output in (fitted[2].stdout + fitted[2].stderr, tested[1].stdout + tested[1].stderr):
        for notice in SILENCED:
            assert notice not in output


@pytest.mark.slow  # one fit and one test in subprocesses (~1 min on 2 cores)
def test_other_warnings_still_reach_the_console(fitted):
    # Lightning's advice on the logging interval is specific to this run: it must stay.
    assert "log_every_n_steps" in fitted[2].stderr


@pytest.mark.slow  # one fit and one test in subprocesses (~1 min on 2 cores)
def test_progress_bar_shows_the_monitored_validation_metric(fitted):
    bar = fitted[2].stdout  # Lightning's TQDM bar writes to stdout
    assert re.search(r"val/toy/pa_mpjpe=\d", bar), bar[-2000:]
    assert "val/toy/mpjpe=" not in bar  # only the monitored one


def test_wandb_notices_are_filtered_and_others_pass():
    script = (
        "import wandb\n"
        "from str_lightning.app.quiet import silence_wandb_notices\n"
        "silence_wandb_notices(); silence_wandb_notices()\n"
        "from wandb.sdk.lib.gitlib import GitRepo\n"
        "wandb.Settings(anonymous=None)\n"
        "GitRepo(root='/nonexistent/run/dir', remote='origin').root_dir\n"
        "wandb.termwarn('a different notice')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "anonymous" not in result.stderr and "git root" not in result.stderr
    assert result.stderr.count("a different notice") == 1


def test_help_lists_the_lightning_commands_with_the_others():
    result = run_command("--help", env=CONSOLE_ENV)
    assert result.returncode == 0
    for command in ("fit", "validate", "test", "predict", "quickstart", "body", "data", "synth",
                    "compare"):
        assert re.search(rf"^ +{command}\s+\S", result.stdout, re.MULTILINE), command


@pytest.mark.parametrize("command", ["fit", "test"])
def test_ckpt_path_help_names_auto_and_best(command):
    result = run_command(command, "--help", env=CONSOLE_ENV)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    help_text = text.split("--ckpt_path CKPT_PATH", 2)[2][:400]  # after the usage line
    assert "'auto'" in help_text and "'best'" in help_text


def test_missing_data_directory_suggests_synth_and_the_override(tmp_path):
    config = tiny_config(tmp_path / "absent", tmp_path / "runs")
    path = write_config(config, tmp_path / "config.yaml")
    result = run_command("fit", "--config", str(path), cwd=tmp_path, env=CONSOLE_ENV)
    assert result.returncode != 0
    assert "data.train_datasets[0]: " + str(tmp_path / "absent" / "train") in result.stderr
    assert "data.val_datasets.toy" in result.stderr
    assert "str-lightning synth" in result.stderr and "--data.test_datasets" in result.stderr
