"""``str-lightning compare RUN_DIR...``: the paper's result tables from local runs, offline.

Each run directory's test results are read from, in this order of preference:

1. ``results/test_results.csv``, written at test end by ``callbacks.results.DatasetResultsTable``;
2. the CSV logger's ``csv/version_N/metrics.csv`` (newest version with test metrics; the last
   value of each ``test/<dataset>/<metric>`` column);
3. the newest offline W&B run under ``wandb/`` with test metrics in its summary.

The table has one row per run and one column per (dataset, metric), PA-MPJPE, MPJPE, MPVPE, Accel
as in the paper's Table 1; ``--layout table2`` adds the ablation switches (the boolean
``init_args`` of the encoder in each run's ``cli_config.yaml`` that differ between the runs) as
in Table 2. Every metric is an error, so the lowest value of each column is set in bold. Written
as Markdown, CSV and a PNG bar chart; ``--wandb`` also logs table and chart to a W&B run.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from str_lightning.run_directory import RunDirectory
from str_lightning.wandb_files import offline_run_files, read_run

METRIC_LABELS = {"pa_mpjpe": "PA-MPJPE", "mpjpe": "MPJPE", "mpvpe": "MPVPE", "accel": "Accel"}
SOURCES = ("auto", "results", "csv", "wandb")
Results = dict[str, dict[str, float]]  # dataset -> metric -> value


class CompareError(ValueError):
    """A run directory without readable test results, or an unusable request."""


# ---------------------------------------------------------------------- results files
def write_results_csv(path: str | Path, results: Results, extra: Mapping[str, Any] | None = None) -> Path:
    """Write one row per dataset: ``dataset``, the metrics (in :data:`METRIC_LABELS` order, others
    after them), then the ``extra`` columns (the same value on every row)."""
    metrics = ordered_metrics({m for values in results.values() for m in values})
    extra = dict(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", *metrics, *extra])
        for dataset, values in results.items():
            writer.writerow([dataset, *(values.get(m, "") for m in metrics), *extra.values()])
    return path


def read_results_csv(path: str | Path, extra_columns: Sequence[str] = ("frames", "global_step",
                                                                         "checkpoint")) -> Results:
    """The metrics of a file written by :func:`write_results_csv` (``extra_columns`` skipped)."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {row["dataset"]: {k: float(v) for k, v in row.items()
                             if k != "dataset" and k not in extra_columns and v not in ("", None)}
            for row in rows}


def ordered_metrics(metrics: set[str] | Sequence[str]) -> list[str]:
    """Metric names in the paper's order, unknown ones after them alphabetically."""
    known = [m for m in METRIC_LABELS if m in metrics]
    return known + sorted(set(metrics) - set(known))


def metrics_from_keys(values: Mapping[str, Any], stage: str = "test") -> Results:
    """``{dataset: {metric: value}}`` from flat keys ``<stage>/<dataset>/<metric>``; a W&B summary
    value ``{"min": v}`` counts as ``v``; ``frames`` counters are left out."""
    results: Results = {}
    for key, value in values.items():
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != stage or parts[2] == "frames":
            continue
        if isinstance(value, Mapping):
            value = value.get("min", value.get("last"))
        if isinstance(value, (int, float)) and not math.isnan(float(value)):
            results.setdefault(parts[1], {})[parts[2]] = float(value)
    return results


def read_csv_logger(run_dir: Path) -> Results:
    """Test metrics of the newest ``csv/version_N/metrics.csv`` that has any ({} if none)."""
    for path in reversed(RunDirectory(run_dir).csv_metrics_files()):
        last: dict[str, float] = {}
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                last.update({k: float(v) for k, v in row.items() if k and v not in ("", None)})
        results = metrics_from_keys(last)
        if results:
            return results
    return {}


def read_wandb_offline(run_dir: Path) -> Results:
    """Test metrics of the newest offline W&B run under ``run_dir/wandb`` that has any."""
    for path in reversed(offline_run_files(run_dir)):
        results = metrics_from_keys(read_run(path)["summary"])
        if results:
            return results
    return {}


# ---------------------------------------------------------------------- runs
@dataclass
class RunResults:
    """Test results of one run directory, and where they came from."""

    name: str
    run_dir: Path
    source: str
    results: Results
    switches: dict[str, bool] = field(default_factory=dict)


def encoder_switches(run_dir: Path) -> dict[str, bool]:
    """Boolean ``init_args`` of the encoder in the run's newest saved ``cli_config.yaml``."""
    configs = sorted(run_dir.glob(f"**/{RunDirectory.CONFIG_FILENAME}"), key=lambda p: p.stat().st_mtime)
    if not configs:
        return {}
    config = yaml.safe_load(configs[-1].read_text()) or {}
    encoder = (config.get("model", {}).get("init_args", {}).get("encoder") or {})
    args = encoder.get("init_args", {}) if isinstance(encoder, Mapping) else {}
    return {k: v for k, v in args.items() if isinstance(v, bool)}


def load_run(run_dir: str | Path, name: str | None = None, source: str = "auto") -> RunResults:
    """The test results of ``run_dir`` from ``source`` (see the module doc; ``auto`` = the first
    that has any). Raises :class:`CompareError` naming the files looked at when none has."""
    run_dir = Path(run_dir)
    results_csv = RunDirectory(run_dir).results_csv
    if not run_dir.is_dir():
        raise CompareError(f"run directory {run_dir} does not exist")
    readers = {
        "results": lambda: read_results_csv(results_csv) if results_csv.is_file() else {},
        "csv": lambda: read_csv_logger(run_dir),
        "wandb": lambda: read_wandb_offline(run_dir),
    }
    if source not in SOURCES:
        raise CompareError(f"unknown results source {source!r}; expected one of {SOURCES}")
    for kind in readers if source == "auto" else (source,):
        results = readers[kind]()
        if results:
            return RunResults(name or run_dir.name, run_dir, kind, results, encoder_switches(run_dir))
    raise CompareError(
        f"{run_dir}: no test metrics found (looked at {results_csv.relative_to(run_dir)}, "
        "csv/version_*/metrics.csv "
        "and wandb/offline-run-*; run `str-lightning test` on it first)")


# ---------------------------------------------------------------------- table
@dataclass
class ComparisonTable:
    """Rows of runs; ``columns`` are (dataset, metric); ``switch_names`` the Table-2 columns."""

    runs: list[RunResults]
    columns: list[tuple[str, str]]
    switch_names: list[str]

    def value(self, run: RunResults, column: tuple[str, str]) -> float | None:
        dataset, metric = column
        return run.results.get(dataset, {}).get(metric)

    def best(self, column: tuple[str, str]) -> float | None:
        values = [v for v in (self.value(r, column) for r in self.runs) if v is not None]
        return min(values) if values else None


def build_table(runs: list[RunResults], datasets: Sequence[str] | None = None,
                metrics: Sequence[str] | None = None, layout: str = "table1") -> ComparisonTable:
    """Columns for ``datasets`` x ``metrics`` (default: all seen, in first-seen / paper order);
    ``layout="table2"`` adds the encoder switches that differ between the runs."""
    if layout not in ("table1", "table2"):
        raise CompareError(f"unknown layout {layout!r}; expected 'table1' or 'table2'")
    seen_datasets = list(dict.fromkeys(d for r in runs for d in r.results))
    datasets = list(datasets or seen_datasets)
    metrics = list(metrics or ordered_metrics({m for r in runs for v in r.results.values() for m in v}))
    columns = [(d, m) for d in datasets for m in metrics
               if any(m in r.results.get(d, {}) for r in runs)]
    if not columns:
        raise CompareError(f"no results for datasets {datasets} and metrics {metrics}; "
                           f"the runs have datasets {seen_datasets}")
    switches = []
    if layout == "table2":
        names = list(dict.fromkeys(k for r in runs for k in r.switches))
        switches = [k for k in names if len({r.switches.get(k) for r in runs}) > 1]
    return ComparisonTable(runs, columns, switches)


def _header(column: tuple[str, str]) -> str:
    dataset, metric = column
    return f"{dataset} {METRIC_LABELS.get(metric, metric)} ↓"


def to_markdown(table: ComparisonTable) -> str:
    """A Markdown table; the best value of each column in bold, ✓/✗ for switches."""
    header = ["Method", *table.switch_names, *map(_header, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in table.runs:
        cells = [run.name]
        cells += [{True: "✓", False: "✗"}.get(run.switches.get(k), "") for k in table.switch_names]
        for column in table.columns:
            value = table.value(run, column)
            text = "–" if value is None else f"{value:.1f}"
            cells.append(f"**{text}**" if value is not None and value == table.best(column) else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(table: ComparisonTable, path: Path) -> Path:
    """The table as CSV with full-precision values (columns ``<dataset>/<metric>``)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", *table.switch_names, *(f"{d}/{m}" for d, m in table.columns),
                         "source", "run_dir"])
        for run in table.runs:
            values = [table.value(run, c) for c in table.columns]
            writer.writerow([run.name, *(run.switches.get(k, "") for k in table.switch_names),
                             *("" if v is None else repr(v) for v in values), run.source, run.run_dir])
    return path


def bar_chart(table: ComparisonTable, path: Path) -> Path:
    """One bar group per (dataset, metric) column, one bar per run; the best bar outlined."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 2.4 * len(table.columns)), 3.4))
    axes = fig.subplots(1, len(table.columns), squeeze=False)[0]
    colours = [f"C{i % 10}" for i in range(len(table.runs))]
    for ax, column in zip(axes, table.columns):
        values = [table.value(r, column) for r in table.runs]
        heights = [0.0 if v is None else v for v in values]
        bars = ax.bar(range(len(values)), heights, color=colours)
        for bar, value in zip(bars, values):
            if value is not None and value == table.best(column):
                bar.set_edgecolor("black")
                bar.set_linewidth(2)
        ax.set_xticks(range(len(values)), [r.name for r in table.runs], rotation=30, ha="right",
                      fontsize=7)
        ax.set_title(_header(column), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_report(table: ComparisonTable, out: str | Path) -> dict[str, Path]:
    """Write ``out`` (Markdown) and the CSV and PNG next to it (same stem)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(table))
    return {"markdown": out, "csv": write_csv(table, out.with_suffix(".csv")),
            "png": bar_chart(table, out.with_suffix(".png"))}


def push_to_wandb(table: ComparisonTable, chart: Path, project: str, name: str) -> str:
    """Log the table and chart to a new W&B run (``job_type="compare"``); returns its URL or,
    offline, its directory. The mode follows ``WANDB_MODE`` (online by default)."""
    import wandb

    columns = ["method", *table.switch_names, *(f"{d}/{m}" for d, m in table.columns)]
    rows = [[r.name, *(r.switches.get(k) for k in table.switch_names),
             *(table.value(r, c) for c in table.columns)] for r in table.runs]
    run = wandb.init(project=project, name=name, job_type="compare")
    try:
        run.log({"comparison/table": wandb.Table(columns=columns, data=rows),
                 "comparison/chart": wandb.Image(str(chart))})
        return run.url or run.dir
    finally:
        run.finish()


# ---------------------------------------------------------------------- command
def add_compare_command(groups: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``str-lightning`` sub-commands (``set_defaults(run=...)``)."""
    parser = groups.add_parser(
        "compare", help="compare the test results of runs as in the paper's tables",
        description="Read the test results of local run directories (results/test_results.csv, "
        "the CSV logger's metrics.csv or offline W&B files; no network needed) and write a "
        "Markdown table (best values in bold), a CSV and a PNG bar chart.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, default=Path("comparison.md"),
                        help="Markdown output; the .csv and .png go next to it")
    parser.add_argument("--names", nargs="+", help="row names (default: the run directory names)")
    parser.add_argument("--layout", choices=("table1", "table2"), default="table1",
                        help="table1: methods x datasets x metrics; table2: plus the ablation "
                        "switches that differ between runs")
    parser.add_argument("--datasets", nargs="+", help="datasets (columns) to show, in this order")
    parser.add_argument("--metrics", nargs="+", choices=list(METRIC_LABELS), help="metrics to show")
    parser.add_argument("--source", choices=SOURCES, default="auto", help="where to read results")
    parser.add_argument("--wandb", action="store_true", help="also log the table to W&B")
    parser.add_argument("--wandb-project", default="str-lightning-compare")
    parser.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    """The ``compare`` command: print the Markdown table and write the report files."""
    try:
        if args.names and len(args.names) != len(args.run_dirs):
            raise CompareError(f"--names: {len(args.names)} names for {len(args.run_dirs)} runs")
        names = args.names or [None] * len(args.run_dirs)
        runs = [load_run(d, n, args.source) for d, n in zip(args.run_dirs, names)]
        table = build_table(runs, args.datasets, args.metrics, args.layout)
    except CompareError as err:
        print(f"str-lightning compare: error: {err}", file=sys.stderr)
        return 2
    paths = write_report(table, args.out)
    print(to_markdown(table))
    print("\n".join(f"{kind}: {path}" for kind, path in paths.items()))
    if args.wandb:
        print("wandb:", push_to_wandb(table, paths["png"], args.wandb_project, args.out.stem))
    return 0
