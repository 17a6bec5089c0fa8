"""``str-lightning compare`` over seeds: real CLI runs, and hand-computed means, spreads and
Welch intervals on run directories written here."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import pytest
import yaml
from training_helpers import tiny_run_dir, write_tiny_shards
from wandb_helpers import pixel_spread, reporting_config, run_cli, wandb_logger_config

from str_lightning.reporting.compare import (
    add_compare_command,
    build_table,
    load_groups,
    load_run,
    to_markdown,
    write_results_csv,
)
from str_lightning.run_directory import RunDirectory

CSV_LOGGER = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": ".", "name": "csv"}}
T_975_DF4 = 2.7764451051977987  # Student t, 97.5 % quantile, 4 degrees of freedom (tables)


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    """``full`` seeds 0 and 1 (CSV logger) and ``no_ttr`` seed 0 (W&B logger with
    WANDB_MODE=disabled), fitted and tested by the CLI: experiment dirs, test metrics per run."""
    root = tmp_path_factory.mktemp("ablation")
    shards = write_tiny_shards(root / "shards")
    metrics = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "disabled")
        for name, logger, use_ttr, seed in (("full", CSV_LOGGER, True, 0), ("full", CSV_LOGGER, True, 1),
                                            ("no_ttr", wandb_logger_config(project="tiny"), False, 0)):
            config = reporting_config(shards, root, name, logger, use_ttr=use_ttr)
            seed_args = ("--seed_everything", str(seed))
            run_cli("fit", "--config", str(config), *seed_args)
            cli, _ = run_cli("test", "--config", str(config), "--ckpt_path", "best", *seed_args)
            metrics[name, seed] = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    return {name: tiny_run_dir(root, name).parent for name in ("full", "no_ttr")}, metrics


def compare(*argv: str) -> int:
    groups = argparse.ArgumentParser().add_subparsers(dest="group")
    add_compare_command(groups)
    args = groups.choices["compare"].parse_args(argv)
    return args.run(args)


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as handle:
        return {row["method"]: row for row in csv.DictReader(handle)}


def test_seeds_train_apart_and_record_their_seed(ablation):
    experiments, metrics = ablation
    assert sorted(p.name for p in experiments["full"].iterdir()) == ["seed0", "seed1"]
    assert metrics["full", 0]["test/toy/mpjpe"] != metrics["full", 1]["test/toy/mpjpe"]
    for seed in (0, 1):
        run_dir = experiments["full"] / f"seed{seed}"
        saved = RunDirectory(run_dir).config_file  # the latest sub-command's: test's
        assert yaml.safe_load(saved.read_text())["seed_everything"] == seed
        assert not list(run_dir.glob("csv/version_*/cli_config.yaml"))
        assert load_run(run_dir).seed == seed


def test_disabled_wandb_run_writes_no_wandb_files(ablation):
    experiments, _ = ablation
    assert not RunDirectory(experiments["no_ttr"] / "seed0").wandb_dir.exists()
    assert list(experiments["full"].glob("seed0/csv/version_*/metrics.csv"))


def test_compare_groups_seeds_into_mean_and_std(ablation, tmp_path, capsys):
    experiments, metrics = ablation
    out = tmp_path / "report.md"
    assert compare(str(experiments["full"]), str(experiments["no_ttr"]), "--out", str(out),
                   "--layout", "table2") == 0
    assert capsys.readouterr().out.startswith(out.read_text())
    rows = read_rows(out.with_suffix(".csv"))
    assert set(rows) == {"full", "no_ttr"}
    assert (rows["full"]["use_ttr"], rows["no_ttr"]["use_ttr"]) == ("True", "False")
    assert (rows["full"]["n"], rows["full"]["seeds"], rows["no_ttr"]["n"]) == ("2", "0 1", "1")
    for metric in ("pa_mpjpe", "mpjpe", "mpvpe", "accel"):
        values = [metrics["full", s][f"test/toy/{metric}"] for s in (0, 1)]
        assert float(rows["full"][f"toy/{metric}"]) == pytest.approx(sum(values) / 2, rel=1e-9)
        assert float(rows["full"][f"toy/{metric}/std"]) == pytest.approx(
            abs(values[0] - values[1]) / math.sqrt(2), rel=1e-6)
        assert float(rows["no_ttr"][f"toy/{metric}"]) == pytest.approx(
            metrics["no_ttr", 0][f"test/toy/{metric}"], rel=1e-9)
        assert rows["no_ttr"][f"toy/{metric}/std"] == rows["no_ttr"][f"toy/{metric}/ci_low"] == ""
    assert "| no_ttr | n/a | n/a | n/a | n/a |" in out.read_text()
    assert pixel_spread(out.with_suffix(".png")) > 0.05


def test_best_mean_of_each_column_is_bold(ablation):
    experiments, metrics = ablation
    table = build_table(load_groups(experiments.values()), layout="table2")
    lines = to_markdown(table).splitlines()
    assert lines[0].startswith("| Method | use_ttr | n | toy PA-MPJPE ↓ | toy MPJPE ↓ | toy MPVPE ↓")
    column = lines[0].split(" | ").index("toy MPJPE ↓")
    means = {"full": (metrics["full", 0]["test/toy/mpjpe"] + metrics["full", 1]["test/toy/mpjpe"]) / 2,
             "no_ttr": metrics["no_ttr", 0]["test/toy/mpjpe"]}
    best = min(means, key=means.get)
    for line in lines[2:4]:
        cells = line.strip("| ").split(" | ")
        assert cells[column].startswith("**") == (cells[0] == best)


def test_real_seed_configs_are_one_configuration(ablation):
    experiments, _ = ablation  # seed0 and seed1 saved their own cli_config.yaml
    (group,) = load_groups([experiments["full"] / "seed1", experiments["full"] / "seed0"])
    assert (group.name, sorted(group.seeds)) == ("full", [0, 1])


def test_every_results_source_gives_the_same_values(ablation):
    experiments, _ = ablation
    from_csv_logger = load_run(experiments["full"] / "seed0", source="csv")
    from_results = load_run(experiments["full"] / "seed0", source="results")
    assert (from_csv_logger.source, from_results.source) == ("csv", "results")
    for metric, value in from_results.results["toy"].items():
        assert from_csv_logger.results["toy"][metric] == pytest.approx(value, rel=1e-6)


# ---------------------------------------------------------------- hand-computed numbers


def write_run(root: Path, experiment: str, seed: int, pa_mpjpe: float, lr: float = 1e-3) -> Path:
    """A run directory as the CLI leaves it: saved config and results/test_results.csv."""
    run_dir = root / "synthetic" / experiment / f"seed{seed}"
    run_dir.mkdir(parents=True)
    config = {"seed_everything": seed, "model": {"init_args": {"lr": lr}},
              "data": {"seq_len": 16}, "trainer": {"max_epochs": 10}}
    (run_dir / "cli_config.yaml").write_text(yaml.safe_dump(config))
    write_results_csv(run_dir / "results" / "test_results.csv", {"test": {"pa_mpjpe": pa_mpjpe}},
                      {"seed": seed})
    return run_dir


@pytest.fixture
def three_by_three(tmp_path):
    """Experiments a, b, c over seeds 1-3 with PA-MPJPE 1 2 3 / 3 4 5 / 4 5 6, and d (seed 1)."""
    for name, values in (("a", (1.0, 2.0, 3.0)), ("b", (3.0, 4.0, 5.0)), ("c", (4.0, 5.0, 6.0))):
        for seed, value in enumerate(values, start=1):
            write_run(tmp_path, name, seed, value)
    write_run(tmp_path, "d", 1, 7.0)
    return tmp_path / "synthetic"


def test_welch_intervals_by_hand(three_by_three, tmp_path):
    # means 2, 4, 5, each std 1 over 3 seeds: se = sqrt(1/3 + 1/3), df = 4
    out = tmp_path / "r.md"
    assert compare(*(str(three_by_three / n) for n in "abcd"), "--out", str(out)) == 0
    half = T_975_DF4 * math.sqrt(2 / 3)  # 2.26696...
    rows = read_rows(out.with_suffix(".csv"))
    for name, mean, difference in (("b", 4.0, 2.0), ("c", 5.0, 3.0)):
        row = rows[name]
        assert (float(row["test/pa_mpjpe"]), float(row["test/pa_mpjpe/std"])) == (mean, 1.0)
        assert float(row["test/pa_mpjpe/diff"]) == difference
        assert float(row["test/pa_mpjpe/ci_low"]) == pytest.approx(difference - half, abs=1e-9)
        assert float(row["test/pa_mpjpe/ci_high"]) == pytest.approx(difference + half, abs=1e-9)
    assert (rows["b"]["test/pa_mpjpe/significant"], rows["c"]["test/pa_mpjpe/significant"]) == (
        "False", "True")
    assert (rows["d"]["n"], rows["d"]["test/pa_mpjpe/diff"], rows["a"]["reference"]) == ("1", "", "a")
    text = out.read_text()
    assert "| a | 3 | **2.0 ± 1.0** |" in text and "| d | 1 | 7.0 |" in text
    assert "| b | +2.0 [-0.3, +4.3] |" in text and "| c | +3.0 [+0.7, +5.3] * |" in text
    assert "| a | reference |" in text and "| d | n/a |" in text


def test_reference_row_is_chosen_by_name(three_by_three, tmp_path):
    out = tmp_path / "r.md"
    assert compare(str(three_by_three / "a"), str(three_by_three / "c"), "--reference", "c",
                   "--out", str(out)) == 0
    rows = read_rows(out.with_suffix(".csv"))
    assert float(rows["a"]["test/pa_mpjpe/diff"]) == -3.0 and rows["a"]["reference"] == "c"
    assert compare(str(three_by_three / "a"), "--reference", "zz", "--out", str(out)) == 2


def test_explicit_seed_directories_form_one_row(three_by_three):
    (group,) = load_groups([three_by_three / "b" / "seed3", three_by_three / "b" / "seed1"])
    assert (group.name, group.seeds, group.values(("test", "pa_mpjpe"))) == ("b", [3, 1], [5.0, 3.0])


def test_seeds_of_different_configurations_are_refused(tmp_path, capsys):
    write_run(tmp_path, "e", 1, 1.0)
    write_run(tmp_path, "e", 2, 2.0, lr=1e-4)
    assert compare(str(tmp_path / "synthetic" / "e"), "--out", str(tmp_path / "r.md")) == 2
    error = capsys.readouterr().err
    assert "not one configuration (model.init_args.lr: 0.001 vs 0.0001)" in error


def test_run_without_results_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert compare(str(tmp_path / "empty"), "--out", str(tmp_path / "r.md")) == 2
    error = capsys.readouterr().err
    assert "empty: no test metrics found" in error and "results/test_results.csv" in error


def test_columns_follow_the_order_the_config_gives_the_test_datasets(tmp_path):
    """The CSV logger lists ``test/synthetic-dark/...`` before ``test/synthetic/...`` (its
    columns are sorted); the table keeps the config's order: synthetic, then synthetic-dark."""
    run_dir = tmp_path / "synthetic" / "str" / "seed0"
    (run_dir / "csv" / "version_0").mkdir(parents=True)
    with (run_dir / "csv" / "version_0" / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "test/synthetic-dark/pa_mpjpe", "test/synthetic/pa_mpjpe"])
        writer.writerow([10, 2.0, 1.0])
    config = {"seed_everything": 0,
              "data": {"test_datasets": {"synthetic": "test", "synthetic-dark": "test-dark"}}}
    (run_dir / "cli_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = load_run(run_dir)
    assert run.source == "csv" and list(run.results) == ["synthetic", "synthetic-dark"]
    table = build_table(load_groups([run_dir]))
    assert [dataset for dataset, _ in table.columns] == ["synthetic", "synthetic-dark"]
