"""``str-lightning compare`` over seeds: real CLI runs, and, on run directories written here in
the test record's format, hand-computed means, spreads, paired and Welch intervals, detectable
effects, and the refusal of runs whose test did not score their own fit."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml
from training_helpers import tiny_run_dir
from wandb_helpers import (
    pixel_spread,
    reporting_config,
    run_cli_in_process_with_wandb,
    wandb_logger_config,
)

from str_lightning.app.commands import build_parser
from str_lightning.reporting.results_files import (
    RECORD_COLUMNS,
    write_results_csv,
    write_test_record,
)
from str_lightning.reporting.runs import load_groups, load_run
from str_lightning.reporting.stats import (
    minimum_detectable_effect,
    paired_seeds_needed,
    welch_seeds_needed,
)
from str_lightning.reporting.tables import build_table, push_to_wandb, to_markdown
from str_lightning.runs.directory import RunDirectory

CSV_LOGGER = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": ".", "name": "csv"}}
T_975_DF2 = 4.302652729749464  # Student t quantiles (tables)
T_975_DF4 = 2.7764451051977987
T_80_DF2 = 0.6 / math.sqrt(0.32)  # closed form for 2 degrees of freedom: (2p - 1) / sqrt(2p(1 - p))
T_80_DF4 = 0.9409645772351816


@pytest.fixture(scope="module")
def ablation(tiny_shards, tmp_path_factory):
    """``full`` seeds 0 and 1 (CSV logger) and ``no_ttr`` seed 0 (W&B logger with
    WANDB_MODE=disabled), fitted and tested by the CLI: experiment dirs, test metrics per run."""
    root = tmp_path_factory.mktemp("ablation")
    metrics = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "disabled")
        for name, logger, use_ttr, seed in (("full", CSV_LOGGER, True, 0), ("full", CSV_LOGGER, True, 1),
                                            ("no_ttr", wandb_logger_config(project="tiny"), False, 0)):
            config = reporting_config(tiny_shards, root, name, logger, use_ttr=use_ttr)
            seed_args = ("--seed_everything", str(seed))
            run_cli_in_process_with_wandb("fit", "--config", str(config), *seed_args)
            cli, _ = run_cli_in_process_with_wandb("test", "--config", str(config),
                                                   "--ckpt_path", "best", *seed_args)
            metrics[name, seed] = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    return {name: tiny_run_dir(root, name).parent for name in ("full", "no_ttr")}, metrics



def compare(*argv: str) -> int:
    args = build_parser().parse_args(["compare", *argv])
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
    assert "| no_ttr | n/a | n/a | n/a | n/a | n/a |" in out.read_text()
    assert pixel_spread(out.with_suffix(".png")) > 0.05


def test_real_test_record_names_the_run_s_own_best_checkpoint(ablation):
    experiments, _ = ablation
    run = RunDirectory(experiments["full"] / "seed1")
    with run.results_csv.open() as handle:
        (row,) = csv.DictReader(handle)
    assert list(row)[-len(RECORD_COLUMNS):] == list(RECORD_COLUMNS)
    assert run.contains(row["checkpoint"]) and Path(row["checkpoint"]).name.startswith("best-")
    saved = yaml.safe_load(run.results_config.read_text())
    assert saved["seed_everything"] == int(row["seed"]) == 1


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
    experiments, _ = ablation  # seed0 and seed1 recorded their own test config
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


def write_run(root: Path, experiment: str, seed: int, pa_mpjpe: float, *, lr: float = 1e-3,
              checkpoint: str | None = None, config: dict | None = None) -> Path:
    """A run directory as ``fit`` + ``test --ckpt_path best`` leave it: the test record
    (``results/test_results.csv`` and ``results/test_config.yaml``), the checkpoint the test loaded
    (default: the run's own best; ``""``: none), ``config`` merged into the test config's top level."""
    run_dir = root / "synthetic" / experiment / f"seed{seed}"
    if checkpoint is None:
        checkpoint = str(RunDirectory(run_dir).checkpoint_dir / "best-step0001000.ckpt")
    test_config = {
        "seed_everything": seed,
        "trainer": {"max_epochs": 10, "devices": 1},
        "model": {"class_path": "str_lightning.modules.PoseShapeModule",
                  "init_args": {"lr": lr, "init_seed": None, "released_checkpoint": None,
                                "spin_checkpoint": None,
                                "encoder": {"class_path": "str_lightning.nets.STREncoder",
                                            "init_args": {"use_ttr": True}}}},
        "data": {"seq_len": 16, "seed": None},
        "run": {"root": str(root), "project": "synthetic", "experiment": experiment},
        "ckpt_path": checkpoint or None,
    }
    for key, value in (config or {}).items():
        test_config[key] = {**test_config[key], **value} if isinstance(value, dict) else value
    write_test_record(run_dir, {"test": {"pa_mpjpe": pa_mpjpe, "frames": 1939}}, test_config,
                      global_step=1000, checkpoint=checkpoint, weights_sha256="ab" * 32, seed=seed)
    return run_dir


@pytest.fixture
def rows(tmp_path):
    """Experiments over seeds: a 1 2 3 and c 4 5 7 (seeds 1-3: paired), b 3 4 5 (seeds 4-6: Welch
    against a), d 7 (seed 1)."""
    for name, seeds, values in (("a", (1, 2, 3), (1.0, 2.0, 3.0)), ("b", (4, 5, 6), (3.0, 4.0, 5.0)),
                                ("c", (1, 2, 3), (4.0, 5.0, 7.0)), ("d", (1,), (7.0,))):
        for seed, value in zip(seeds, values):
            write_run(tmp_path, name, seed, value)
    return tmp_path / "synthetic"


def test_record_files_have_the_documented_format(rows):
    run = RunDirectory(rows / "a" / "seed2")
    assert run.results_csv.read_text().splitlines() == [
        "dataset,pa_mpjpe,frames,global_step,checkpoint,weights_sha256,seed",
        f"test,2.0,1939,1000,{run.checkpoint_dir / 'best-step0001000.ckpt'},{'ab' * 32},2"]
    assert yaml.safe_load(run.results_config.read_text())["seed_everything"] == 2
    assert not list(run.path.rglob("*.tmp"))


def test_intervals_paired_by_seed_or_welch_by_hand(rows, tmp_path):
    out = tmp_path / "r.md"
    assert compare(*(str(rows / n) for n in "abcd"), "--out", str(out)) == 0
    table = read_rows(out.with_suffix(".csv"))
    # b - a, Welch: means 4 and 2, each std 1 over 3 seeds: se = sqrt(2/3), df = 4
    se = math.sqrt(2 / 3)
    b = table["b"]
    assert (float(b["test/pa_mpjpe"]), float(b["test/pa_mpjpe/std"]), b["test/pa_mpjpe/design"]) == (
        4.0, 1.0, "welch")
    assert float(b["test/pa_mpjpe/diff"]) == 2.0
    assert float(b["test/pa_mpjpe/ci_low"]) == pytest.approx(2 - T_975_DF4 * se, abs=1e-9)
    assert float(b["test/pa_mpjpe/ci_high"]) == pytest.approx(2 + T_975_DF4 * se, abs=1e-9)
    assert float(b["test/pa_mpjpe/mde"]) == pytest.approx((T_975_DF4 + T_80_DF4) * se, abs=1e-8)
    # c - a, paired by seed: differences 3 3 4, mean 10/3, std sqrt(1/3): se = 1/3, df = 2
    c = table["c"]
    assert c["test/pa_mpjpe/design"] == "paired" and c["test/pa_mpjpe/significant"] == "True"
    assert float(c["test/pa_mpjpe/diff"]) == pytest.approx(10 / 3)
    assert float(c["test/pa_mpjpe/ci_low"]) == pytest.approx(10 / 3 - T_975_DF2 / 3, abs=1e-9)
    assert float(c["test/pa_mpjpe/ci_high"]) == pytest.approx(10 / 3 + T_975_DF2 / 3, abs=1e-9)
    assert float(c["test/pa_mpjpe/mde"]) == pytest.approx((T_975_DF2 + T_80_DF2) / 3, abs=1e-8)
    assert (table["d"]["n"], table["d"]["test/pa_mpjpe/diff"], table["a"]["reference"]) == ("1", "", "a")
    text = out.read_text()
    assert "| a | 3 | **2.0 ± 1.0** |" in text and "| d | 1 | 7.0 |" in text
    assert "| a | reference | reference |" in text and "| d | n/a | n/a |" in text
    assert "| b | Welch t | +2.0 [-0.3, +4.3] (MDE 3.0) |" in text
    assert "| c | paired t | +3.3 [+1.9, +4.8] * (MDE 1.8) |" in text
    assert "2 intervals at 95%: about 0.1 of them would exclude 0 by chance alone" in text
    assert "not significant" in text


def test_pairs_follow_the_seeds_not_the_argument_order(rows):
    shuffled = [rows / "a", *(rows / "c" / f"seed{s}" for s in (3, 1, 2))]
    table = build_table(load_groups(shuffled))
    interval = table.interval(table.groups[1], ("test", "pa_mpjpe"))
    assert (interval.design, interval.difference) == ("paired", pytest.approx(10 / 3))
    assert interval.high - interval.low == pytest.approx(2 * T_975_DF2 / 3)


def test_rows_with_partly_shared_seeds_are_compared_by_welch(rows, tmp_path):
    for seed, value in ((2, 4.0), (3, 5.0), (4, 7.0)):
        write_run(tmp_path, "e", seed, value)
    table = build_table(load_groups([rows / "a", rows / "e"]))
    interval = table.interval(table.groups[1], ("test", "pa_mpjpe"))
    assert interval.design == "welch" and not table.paired(table.groups[1])


def test_target_effect_gives_the_seeds_each_row_needs(rows, tmp_path, capsys):
    out = tmp_path / "r.md"
    assert compare(*(str(rows / n) for n in "abc"), "--out", str(out), "--target-effect", "1") == 0
    printed = capsys.readouterr().out
    assert printed.startswith(out.read_text()) and "true difference of 1 (in each metric's unit)" in printed
    # b: both spreads 1, so d = 1: Cohen (1988, Table 2.4.1) gives 17 per group at 80 % power
    assert welch_seeds_needed(1.0, 1.0, 1.0) == 17
    paired = paired_seeds_needed(math.sqrt(1 / 3), 1.0)
    lines = printed.split("Seeds per row")[1].splitlines()
    assert "| b | Welch t | 17 |" in lines and f"| c | paired t | {paired} |" in lines
    assert minimum_detectable_effect(math.sqrt(1 / 3 / paired), paired - 1) <= 1.0
    with pytest.raises(SystemExit):
        compare(str(rows / "a"), "--target-effect", "0")


def test_reference_row_is_chosen_by_name(rows, tmp_path):
    out = tmp_path / "r.md"
    assert compare(str(rows / "a"), str(rows / "c"), "--reference", "c", "--out", str(out)) == 0
    table = read_rows(out.with_suffix(".csv"))
    assert float(table["a"]["test/pa_mpjpe/diff"]) == pytest.approx(-10 / 3)
    assert table["a"]["reference"] == "c"
    assert compare(str(rows / "a"), "--reference", "zz", "--out", str(out)) == 2


def test_explicit_seed_directories_form_one_row(rows):
    (group,) = load_groups([rows / "b" / "seed6", rows / "b" / "seed4"])
    assert (group.name, group.seeds, group.values(("test", "pa_mpjpe"))) == ("b", [6, 4], [5.0, 3.0])


def test_an_experiment_s_seed_directories_are_its_seed_n_directories_by_seed(tmp_path):
    for name in ("seed10", "seed2", "seedling", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "seed3").touch()  # a file, not a run directory
    assert [run.path.name for run in RunDirectory.seeds_of(tmp_path)] == ["seed2", "seed10"]
    assert RunDirectory.seeds_of(tmp_path / "missing") == []
    assert [RunDirectory(tmp_path / name).seed for name in ("seed10", "seedling")] == [10, None]
    assert RunDirectory.of({"root": "r", "project": "p", "experiment": "e"}, 7).seed == 7


def test_forest_plot_is_drawn_for_every_metric_and_for_one_row(rows, tmp_path):
    out = tmp_path / "r.md"
    assert compare(*(str(rows / n) for n in "abcd"), "--out", str(out)) == 0
    assert pixel_spread(out.with_suffix(".png")) > 0.05
    alone = tmp_path / "alone.md"
    assert compare(str(rows / "a"), "--out", str(alone)) == 0
    assert "0 intervals" in alone.read_text() and pixel_spread(alone.with_suffix(".png")) > 0.01


def test_wandb_gets_the_differences_and_the_forest_plot(rows, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    out = tmp_path / "r.md"
    assert compare(*(str(rows / n) for n in "abc"), "--out", str(out)) == 0
    table = build_table(load_groups([rows / n for n in "abc"]))
    run_dir = Path(push_to_wandb(table, out.with_suffix(".png"), "tiny", "r")).parent
    media = run_dir / "files" / "media"
    (differences,) = (media / "table" / "comparison").glob("differences_*.table.json")
    logged = json.loads(differences.read_text())
    assert logged["columns"] == ["method", "dataset", "metric", "design", "difference", "low", "high",
                                 "mde", "significant"]
    by_method = {row[0]: dict(zip(logged["columns"], row)) for row in logged["data"]}
    assert set(by_method) == {"b", "c"}
    assert (by_method["c"]["design"], by_method["c"]["significant"]) == ("paired", True)
    assert by_method["c"]["low"] == pytest.approx(10 / 3 - T_975_DF2 / 3)
    assert by_method["b"]["mde"] == pytest.approx((T_975_DF4 + T_80_DF4) * math.sqrt(2 / 3))
    assert list((media / "images" / "comparison").glob("forest_*.png"))


# ---------------------------------------------------------------- which runs count


def test_configuration_comes_from_the_test_record_not_a_later_command(rows):
    # a later predict with other predict_datasets rewrote cli_config.yaml of one seed
    later = {"seed_everything": 2, "data": {"seq_len": 16, "predict_datasets": {"x": "/x"}}}
    (rows / "a" / "seed2" / "cli_config.yaml").write_text(yaml.safe_dump(later))
    (group,) = load_groups([rows / "a"])
    assert group.seeds == [1, 2, 3]


def test_seed_settings_left_to_the_run_are_part_of_the_seed(tmp_path, capsys):
    write_run(tmp_path, "f", 1, 1.0, config={"data": {"seed": 1}, "model": {
        "init_args": {"lr": 1e-3, "init_seed": None}}})
    write_run(tmp_path, "f", 2, 2.0, config={"model": {"init_args": {"lr": 1e-3, "init_seed": 2}}})
    assert [g.seeds for g in load_groups([tmp_path / "synthetic" / "f"])] == [[1, 2]]
    write_run(tmp_path, "g", 1, 1.0, config={"data": {"seed": 5}})
    write_run(tmp_path, "g", 2, 2.0, config={"data": {"seed": 6}})
    assert compare(str(tmp_path / "synthetic" / "g"), "--out", str(tmp_path / "r.md")) == 2
    assert "not one configuration (data.seed: 5 vs 6)" in capsys.readouterr().err


def test_seeds_of_different_configurations_are_refused(tmp_path, capsys):
    write_run(tmp_path, "e", 1, 1.0)
    write_run(tmp_path, "e", 2, 2.0, lr=1e-4)
    assert compare(str(tmp_path / "synthetic" / "e"), "--out", str(tmp_path / "r.md")) == 2
    error = capsys.readouterr().err
    assert "not one configuration (model.init_args.lr: 0.001 vs 0.0001)" in error


def test_seed_tested_on_another_run_s_checkpoint_is_refused(rows, tmp_path, capsys):
    foreign = str(RunDirectory(rows / "c" / "seed2").checkpoint_dir / "best-step0001000.ckpt")
    write_run(tmp_path, "h", 1, 1.0)
    seed2 = write_run(tmp_path, "h", 2, 2.0, checkpoint=foreign)
    assert compare(str(tmp_path / "synthetic" / "h"), "--out", str(tmp_path / "r.md")) == 2
    error = capsys.readouterr().err
    assert f"{seed2}: its test loaded {foreign}, which this run's own fit did not write" in error
    assert "--seed_everything 2 --ckpt_path best" in error
    write_run(tmp_path, "k", 1, 1.0, checkpoint=foreign, config={"run": None})  # no run section
    with pytest.raises(ValueError, match="which this run's own fit did not write"):
        load_run(tmp_path / "synthetic" / "k" / "seed1")


def test_untrained_test_is_refused_unless_released_weights_were_loaded(tmp_path, capsys):
    untrained = write_run(tmp_path, "u", 1, 1.0, checkpoint="")
    assert compare(str(untrained), "--out", str(tmp_path / "r.md")) == 2
    error = capsys.readouterr().err
    assert f"{untrained}: its test loaded no checkpoint" in error and "untrained weights" in error
    released = {"model": {"init_args": {"lr": 1e-3, "released_checkpoint": "/w/tcmr.pth.tar"}}}
    write_run(tmp_path, "r", 1, 1.0, checkpoint="", config=released)
    assert load_run(tmp_path / "synthetic" / "r" / "seed1").seed == 1


@pytest.mark.parametrize("relative_root", [False, True])
def test_a_run_directory_moved_since_its_test_keeps_its_own_checkpoint(tmp_path, relative_root):
    cluster = tmp_path / "cluster" / "runs"
    root = "runs" if relative_root else str(cluster)
    run_dir = write_run(tmp_path / "laptop", "m", 1, 1.0, checkpoint=str(
        cluster / "synthetic" / "m" / "seed1" / "checkpoints" / "best.ckpt"),
        config={"run": {"root": root, "project": "synthetic", "experiment": "m"}})
    assert load_run(run_dir).seed == 1
    other = cluster / "synthetic" / "other" / "seed1" / "checkpoints" / "best.ckpt"
    write_run(tmp_path / "laptop2", "m", 1, 1.0, checkpoint=str(other),
              config={"run": {"root": root, "project": "synthetic", "experiment": "m"}})
    with pytest.raises(ValueError, match="which this run's own fit did not write"):
        load_run(tmp_path / "laptop2" / "synthetic" / "m" / "seed1")


def test_run_without_a_test_record_is_refused_with_what_to_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert compare(str(tmp_path / "empty"), "--out", str(tmp_path / "r.md")) == 2
    error = capsys.readouterr().err
    assert "empty: no record of its test (results/test_config.yaml is missing)" in error
    assert "--ckpt_path best" in error
    old = tmp_path / "old" / "seed3"  # results of a test from before tests recorded their config
    write_results_csv(RunDirectory(old).results_csv, {"test": {"pa_mpjpe": 1.0, "frames": 9}},
                      {"global_step": 10, "checkpoint": "", "seed": 3})
    assert compare(str(old), "--out", str(tmp_path / "r.md")) == 2
    assert "--seed_everything 3 --ckpt_path best" in capsys.readouterr().err
    RunDirectory(old).results_config.write_text("seed_everything: 3\n")
    assert compare(str(old), "--out", str(tmp_path / "r.md")) == 2
    assert "missing ['weights_sha256']" in capsys.readouterr().err


def test_columns_follow_the_order_the_config_gives_the_test_datasets(tmp_path):
    """A results file may list ``synthetic-dark`` before ``synthetic`` (the CSV logger sorts its
    columns); the table keeps the config's order: synthetic, then synthetic-dark."""
    run_dir = tmp_path / "synthetic" / "str" / "seed0"
    config = {"seed_everything": 0,
              "data": {"test_datasets": {"synthetic": "test", "synthetic-dark": "test-dark"}}}
    write_test_record(run_dir, {"synthetic-dark": {"pa_mpjpe": 2.0, "frames": 9},
                                "synthetic": {"pa_mpjpe": 1.0, "frames": 9}},
                      config, global_step=10, weights_sha256="ab" * 32, seed=0,
                      checkpoint=str(RunDirectory(run_dir).checkpoint_dir / "best.ckpt"))
    run = load_run(run_dir)
    assert list(run.results) == ["synthetic", "synthetic-dark"]
    table = build_table(load_groups([run_dir]))
    assert [dataset for dataset, _ in table.columns] == ["synthetic", "synthetic-dark"]
