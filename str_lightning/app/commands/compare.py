"""``str-lightning compare RUN_DIR...``: the paper's result tables over seeds, from local runs, offline.

Rows are configurations, each measured over seeds. A ``RUN_DIR`` is an experiment directory
``<run.root>/<run.project>/<run.experiment>`` (all its ``seed<N>`` run directories), one
``seed<N>`` run directory (several of one experiment form one row), or any other run directory
(a row of one run).

A run counts only with the record its last test left in ``results/``
(:mod:`~str_lightning.reporting.results_files`); a run whose test did not score its own fit's
weights is refused, and the seeds of a row must be one configuration
(:mod:`~str_lightning.reporting.runs`). The metrics come from ``results/test_results.csv``
(``--source auto``, the default, or ``results``), or, to cross-check it, from the CSV logger's
newest ``csv/version_N/metrics.csv`` with test metrics (``csv``) or the newest offline W&B run
with test metrics in its summary (``wandb``). The tables (mean ± std over seeds, each row's
difference from a reference row with its interval, a forest plot) are built by
:mod:`~str_lightning.reporting.tables`; ``--wandb`` also logs them to a W&B run. docs/results.md
explains how to read them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from str_lightning.app.commands.arguments import Commands, add_command, positive_float
from str_lightning.evaluation.metrics import METRIC_LABELS
from str_lightning.reporting.results_files import SOURCES, CompareError
from str_lightning.reporting.runs import load_groups
from str_lightning.reporting.tables import build_table, push_to_wandb, to_markdown, write_report


def add_compare_command(commands: Commands) -> None:
    compare = add_command(
        commands, "compare", _run_compare,
        help="compare the test results of runs over seeds as in the paper's tables",
        description="Read the test record of local run directories (results/test_results.csv "
        "and results/test_config.yaml, written by every `str-lightning test`; no network needed), "
        "refuse a run whose test did not score its own fit's checkpoint, group the seeds of each "
        "experiment, and write a Markdown table of mean ± std over seeds (best means in bold), "
        "each row's difference from a reference row (row − reference) with its 95% t interval "
        "(paired by seed when both rows ran the same seeds, Welch's otherwise; * = significant, "
        "the interval excludes 0) and the minimum detectable effect at 80% power, a CSV and a "
        "PNG forest plot of the differences.",
    )
    compare.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                         help="experiment directories (all their seed<N> runs), seed<N> run "
                         "directories, or other run directories")
    compare.add_argument("--out", type=Path, default=Path("comparison.md"),
                         help="Markdown output; the .csv and the .png forest plot go next to it")
    compare.add_argument("--names", nargs="+",
                         help="row names, one per experiment (default: the experiment directory names)")
    compare.add_argument("--reference", metavar="NAME",
                         help="the row differences are taken from (default: the first row)")
    compare.add_argument("--layout", choices=("table1", "table2"), default="table1",
                         help="table1: methods x datasets x metrics; table2: plus the ablation "
                         "switches that differ between runs")
    compare.add_argument("--datasets", nargs="+", help="datasets (columns) to show, in this order")
    compare.add_argument("--metrics", nargs="+", choices=list(METRIC_LABELS), help="metrics to show")
    compare.add_argument("--target-effect", type=positive_float, metavar="MM",
                         help="also give, per row and metric, the seeds that would detect a "
                         "difference of MM (mm/frame² for Accel) with 80%% power at the current spreads")
    compare.add_argument("--source", choices=SOURCES, default="auto",
                         help="where to read the metrics: results/test_results.csv (auto, results), "
                         "or, to cross-check it, the CSV logger (csv) or offline W&B files (wandb); "
                         "the test record is required either way")
    compare.add_argument("--wandb", action="store_true",
                         help="also log the tables and the forest plot to a W&B run")
    compare.add_argument("--wandb-project", default="str-lightning-compare")


def _run_compare(args: argparse.Namespace) -> int:
    """Print the Markdown tables and write the report files."""
    try:
        groups = load_groups(args.run_dirs, args.names, args.source)
        table = build_table(groups, args.datasets, args.metrics, args.layout, args.reference)
    except CompareError as err:
        print(f"str-lightning compare: error: {err}", file=sys.stderr)
        return 2
    paths = write_report(table, args.out, args.target_effect)
    print(to_markdown(table, args.target_effect))
    print("\n".join(f"{kind}: {path}" for kind, path in paths.items()))
    if args.wandb:
        print("wandb:", push_to_wandb(table, paths["png"], args.wandb_project, args.out.stem))
    return 0
