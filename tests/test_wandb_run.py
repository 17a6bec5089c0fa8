"""A real offline W&B run through the CLI: summaries, provenance, media; helpers; the file reader."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest
from training_helpers import tiny_run_dir
from wandb_helpers import reporting_config, run_cli_in_process_with_wandb, wandb_logger_config

from callbacks.wandb_run import fill_wandb_init_args, finish_wandb, run_name, slurm_ids
from str_lightning.reporting.results_files import read_results_csv
from str_lightning.reporting.wandb_files import WandbFileError, offline_run_files, read_run
from str_lightning.runs.directory import RunDirectory

SEED = 3
CSV_LOGGER = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": ".", "name": "csv"}}
PRINTED_METRIC = re.compile(r"^\s*(test/\S+)\s+([-+0-9.eE]+)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def offline_run(tiny_shards, tmp_path_factory):
    """fit then test of one tiny run (seed 3) with the offline W&B logger, names and group left to
    the CLI: (run dir, printed test metrics)."""
    root = tmp_path_factory.mktemp("wandb")
    loggers = [wandb_logger_config(tags=["t1", "t2"]), CSV_LOGGER]
    config = reporting_config(tiny_shards, root, "str", loggers,
                              visuals={"num_sequences": 1, "every_n_validations": 2},
                              seed_everything=SEED, trainer={"log_every_n_steps": 1},
                              max_steps=4, steps_per_epoch=2)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "offline")
        env.setenv("WANDB_SILENT", "true")
        env.setenv("SLURM_JOB_ID", "4242")
        run_cli_in_process_with_wandb("fit", "--config", str(config))
        _, printed = run_cli_in_process_with_wandb(
            "test", "--config", str(config), "--ckpt_path", "best",
            "--verbose", "true")  # Lightning's full-precision table
    printed_metrics = {k: float(v) for k, v in PRINTED_METRIC.findall(printed)}
    return tiny_run_dir(root, "str", SEED), printed_metrics


def test_offline_summary_holds_the_printed_test_metrics(offline_run):
    run_dir, printed = offline_run
    assert {"test/toy/mpjpe", "test/toy/pa_mpjpe", "test/toy/accel", "test/toy/mpvpe"} <= set(printed)
    _, test_file = offline_run_files(run_dir)  # fit and test: two runs, both finished
    summary = read_run(test_file)["summary"]
    for key, value in printed.items():
        logged = summary[key]
        if key.split("/")[-1] == "frames":
            assert logged == pytest.approx(value, rel=1e-12), key
        else:
            assert logged["min"] == logged["last"] == pytest.approx(value, rel=1e-12), key
    results_csv = RunDirectory(run_dir).results_csv
    assert read_results_csv(results_csv)["toy"]["mpjpe"] == pytest.approx(printed["test/toy/mpjpe"],
                                                                          rel=1e-12)
    with results_csv.open() as handle:
        assert [row["seed"] for row in csv.DictReader(handle)] == [str(SEED)]


def test_errors_are_summarised_by_their_best_and_last_values(offline_run):
    run_dir, _ = offline_run
    summary = read_run(offline_run_files(run_dir)[0])["summary"]
    history = read_csv_history(run_dir)
    for key in ("train/loss", *(f"val/toy/{m}" for m in ("mpjpe", "pa_mpjpe", "accel", "mpvpe"))):
        assert set(summary[key]) == {"min", "last"}, key
        logged = history[key]
        assert len(logged) >= 2, key  # so min and last can differ
        assert summary[key]["min"] == pytest.approx(min(logged), rel=1e-6), key
        assert summary[key]["last"] == pytest.approx(logged[-1], rel=1e-6), key


def test_fit_and_test_runs_are_named_typed_and_grouped_by_configuration(offline_run):
    run_dir, _ = offline_run
    fit, test = (read_run(f) for f in offline_run_files(run_dir))
    assert (fit["name"], fit["job_type"]) == ("str-seed3-fit", "fit")
    assert (test["name"], test["job_type"]) == ("str-seed3-test", "test")
    for run in (fit, test):
        assert (run["group"], run["project"], run["tags"]) == ("tiny/str", "tiny", ["t1", "t2"])
        assert run["config"]["seed"] == SEED
        assert run["config"]["cli_config"]["seed_everything"] == SEED


def test_run_records_config_git_versions_manifests_and_slurm(offline_run):
    run_dir, _ = offline_run
    config = read_run(offline_run_files(run_dir)[0])["config"]
    assert config["cli_config"]["run"]["experiment"] == "str"
    assert config["cli_config"]["model"]["init_args"]["encoder"]["init_args"]["hidden_size"] == 8
    assert re.fullmatch(r"[0-9a-f]{40}", config["git"]["commit"])
    assert config["versions"]["torch"] and config["versions"]["wandb"]
    manifests = config["data_manifests"]
    assert set(manifests) == {"train/0", "train/1", "val/toy", "test/toy"}
    val_manifest = Path(manifests["val/toy"]["path"]) / "manifest.json"
    assert manifests["val/toy"]["sha256"] == hashlib.sha256(val_manifest.read_bytes()).hexdigest()
    assert config["slurm"] == {"job_id": "4242"}


def read_csv_history(run_dir: Path) -> dict[str, list[float]]:
    """Every value each metric had in the fit run, in order, from the CSV logger beside W&B."""
    history: dict[str, list[float]] = {}
    with next(run_dir.glob("csv/version_0/metrics.csv")).open() as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if value:
                    history.setdefault(key, []).append(float(value))
    return history


def test_images_and_results_table_are_in_the_run_files(offline_run):
    run_dir, _ = offline_run
    fit_run, test_run = (f.parent for f in offline_run_files(run_dir))
    images = sorted(p.name.split("_")[0] for p in (fit_run / "files/media/images/visuals/toy").glob("*.png"))
    assert images == ["accel", "mesh", "skeleton2d", "skeleton3d"]
    assert list((test_run / "files/media/table/results").glob("test_*.table.json"))
    assert read_run(offline_run_files(run_dir)[1])["summary"]["results/test"]["nrows"] == 1


def test_run_name_has_seed_subcommand_and_the_slurm_restart_suffix():
    assert run_name("str_full", 1, "fit", {}) == "str_full-seed1-fit"
    assert run_name("str_full", 0, "test", {"SLURM_RESTART_COUNT": "2"}) == "str_full-seed0-test-r2"
    assert run_name("str_full", 2, None, {}) == "str_full-seed2"


def test_fill_wandb_init_args_keeps_explicit_values():
    init_args = {"project": None, "name": None, "group": "table2", "job_type": None}
    fill_wandb_init_args(init_args, {"project": "ablations", "experiment": "no_ttr"}, 2, "fit",
                         {"SLURM_RESTART_COUNT": "1"})
    assert init_args == {"project": "ablations", "name": "no_ttr-seed2-fit-r1", "group": "table2",
                         "job_type": "fit"}
    defaults = {"project": None, "name": None, "group": None, "job_type": None}
    fill_wandb_init_args(defaults, {"project": "ablations", "experiment": "no_ttr"}, 2, "test", {})
    assert defaults["group"] == "ablations/no_ttr"


def test_slurm_ids_are_empty_outside_slurm():
    assert slurm_ids({"HOME": "/root"}) == {}
    assert slurm_ids({"SLURM_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "3"}) == {"job_id": "7",
                                                                           "array_task_id": "3"}


def test_finish_without_a_run_does_nothing():
    finish_wandb()  # no run in progress: must neither fail nor start one
    import wandb

    assert wandb.run is None


def test_corrupt_run_file_is_a_clear_error(offline_run, tmp_path):
    run_dir, _ = offline_run
    data = bytearray(offline_run_files(run_dir)[0].read_bytes())
    data[100] ^= 0xFF
    broken = tmp_path / "run-x.wandb"
    broken.write_bytes(bytes(data))
    with pytest.raises(WandbFileError, match="corrupt record"):
        read_run(broken)
    (tmp_path / "not.wandb").write_bytes(b"hello world")
    with pytest.raises(WandbFileError, match="not a W&B run log"):
        read_run(tmp_path / "not.wandb")
