"""Two short ablation runs (CSV logger; W&B disabled) -> ``str-lightning compare`` -> the table."""

from __future__ import annotations

import argparse
import csv

import pytest
from training_helpers import write_tiny_shards
from wandb_helpers import pixel_spread, reporting_config, run_cli, wandb_logger_config

from str_lightning.compare import add_compare_command, build_table, load_run, to_markdown
from str_lightning.run_directory import RunDirectory

CSV_LOGGER = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": ".", "name": "csv"}}


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    """``full`` (CSV logger) and ``no_ttr`` (W&B logger with WANDB_MODE=disabled): run dirs and
    the test metrics each CLI run ended with."""
    root = tmp_path_factory.mktemp("ablation")
    shards = write_tiny_shards(root / "shards")
    metrics = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "disabled")
        for name, logger, use_ttr in (("full", CSV_LOGGER, True),
                                      ("no_ttr", wandb_logger_config(project="tiny"), False)):
            config = reporting_config(shards, root, name, logger, use_ttr=use_ttr)
            run_cli("fit", "--config", str(config))
            cli, _ = run_cli("test", "--config", str(config), "--ckpt_path", "best")
            metrics[name] = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    return {name: root / "tiny" / name for name in metrics}, metrics


def compare(*argv: str) -> int:
    groups = argparse.ArgumentParser().add_subparsers(dest="group")
    add_compare_command(groups)
    args = groups.choices["compare"].parse_args(argv)
    return args.run(args)


def test_disabled_wandb_run_writes_no_wandb_files(ablation):
    run_dirs, _ = ablation
    assert not RunDirectory(run_dirs["no_ttr"]).wandb_dir.exists()
    assert list(run_dirs["full"].glob("csv/version_*/metrics.csv"))


def test_compare_writes_both_rows_with_their_values(ablation, tmp_path, capsys):
    run_dirs, metrics = ablation
    out = tmp_path / "report.md"
    assert compare(str(run_dirs["full"]), str(run_dirs["no_ttr"]), "--out", str(out),
                   "--layout", "table2") == 0
    assert capsys.readouterr().out.startswith(out.read_text())
    with out.with_suffix(".csv").open() as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"full", "no_ttr"}
    assert (rows["full"]["use_ttr"], rows["no_ttr"]["use_ttr"]) == ("True", "False")
    for name, row in rows.items():
        for metric in ("pa_mpjpe", "mpjpe", "mpvpe", "accel"):
            assert float(row[f"toy/{metric}"]) == pytest.approx(metrics[name][f"test/toy/{metric}"],
                                                                 rel=1e-9)
    assert pixel_spread(out.with_suffix(".png")) > 0.05


def test_best_value_of_each_column_is_bold(ablation):
    run_dirs, metrics = ablation
    table = build_table([load_run(d) for d in run_dirs.values()], layout="table2")
    lines = to_markdown(table).splitlines()
    assert lines[0].startswith("| Method | use_ttr | toy PA-MPJPE ↓ | toy MPJPE ↓ | toy MPVPE ↓")
    column = lines[0].split(" | ").index("toy MPJPE ↓")
    best = min(metrics, key=lambda name: metrics[name]["test/toy/mpjpe"])
    for line in lines[2:]:
        cells = line.strip("| ").split(" | ")
        assert cells[column].startswith("**") == (cells[0] == best)


def test_every_results_source_gives_the_same_values(ablation):
    run_dirs, _ = ablation
    from_csv_logger = load_run(run_dirs["full"], source="csv")
    from_results = load_run(run_dirs["full"], source="results")
    assert (from_csv_logger.source, from_results.source) == ("csv", "results")
    for metric, value in from_results.results["toy"].items():
        assert from_csv_logger.results["toy"][metric] == pytest.approx(value, rel=1e-6)


def test_run_without_results_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert compare(str(tmp_path / "empty"), "--out", str(tmp_path / "r.md")) == 2
    error = capsys.readouterr().err
    assert "empty: no test metrics found" in error and "results/test_results.csv" in error
