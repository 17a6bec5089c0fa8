"""``str-lightning compare RUN_DIR...``: the paper's result tables over seeds, from local runs, offline.

Rows are configurations, each measured over seeds. A ``RUN_DIR`` is an experiment directory
``<run.root>/<run.project>/<run.experiment>`` (all its ``seed<N>`` run directories), one
``seed<N>`` run directory (several of one experiment form one row), or any other run directory
(a row of one run). The seeds of a row must be one configuration: the same saved
``cli_config.yaml`` in :data:`CONFIGURATION_KEYS` (model, data and training budget), else the
command stops naming the first key that differs.

Each run directory's test results are read from, in this order of preference:

1. ``results/test_results.csv``, written at test end by ``callbacks.results.DatasetResultsTable``;
2. the CSV logger's ``csv/version_N/metrics.csv`` (newest version with test metrics; the last
   value of each ``test/<dataset>/<metric>`` column);
3. the newest offline W&B run under ``wandb/`` with test metrics in its summary.

The table has one row per configuration and one column per (dataset, metric), PA-MPJPE, MPJPE,
MPVPE, Accel as in the paper's Table 1, each cell the mean ± sample standard deviation over the
row's ``n`` seeds; ``--layout table2`` adds the ablation switches (the boolean ``init_args`` of
the encoder that differ between the rows) as in Table 2. Every metric is an error, so the lowest
mean of each column is set in bold. A second table gives each row's difference from a reference
row (``--reference``, default the first) with a 95 % Welch t interval over seeds, marked
significant when it excludes 0 (``n/a`` with fewer than two seeds on either side; docs/results.md
explains the choice). Written as Markdown, CSV and a PNG bar chart with standard-deviation error
bars; ``--wandb`` also logs table and chart to a W&B run.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from str_lightning.metrics import METRIC_LABELS
from str_lightning.reporting.stats import Interval, Summary, summarize, welch_interval
from str_lightning.reporting.wandb_files import offline_run_files, read_run
from str_lightning.run_directory import RunDirectory

SOURCES = ("auto", "results", "csv", "wandb")
SEED_DIR = re.compile(r"seed(\d+)")
CONFIDENCE = 0.95
CONFIGURATION_KEYS = ("model", "data", "trainer.max_epochs", "trainer.max_steps", "trainer.precision",
                      "trainer.accumulate_grad_batches", "trainer.gradient_clip_val")
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
                                                                         "checkpoint", "seed")) -> Results:
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
    """Test results of one run directory, where they came from, its seed and configuration."""

    name: str
    run_dir: Path
    source: str
    results: Results
    switches: dict[str, bool] = field(default_factory=dict)
    seed: int | None = None
    configuration: dict[str, Any] = field(default_factory=dict)


def saved_config(run_dir: Path) -> dict[str, Any]:
    """The run's newest saved ``cli_config.yaml`` ({} if none)."""
    configs = sorted(run_dir.glob(f"**/{RunDirectory.CONFIG_FILENAME}"), key=lambda p: p.stat().st_mtime)
    return (yaml.safe_load(configs[-1].read_text()) or {}) if configs else {}


def encoder_switches(config: Mapping[str, Any]) -> dict[str, bool]:
    """Boolean ``init_args`` of the encoder in a saved CLI config."""
    encoder = (config.get("model", {}).get("init_args", {}).get("encoder") or {})
    args = encoder.get("init_args", {}) if isinstance(encoder, Mapping) else {}
    return {k: v for k, v in args.items() if isinstance(v, bool)}


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(config, Mapping) or key not in config:
            return None
        config = config[key]
    return config


def configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    """What makes two runs the same configuration: the :data:`CONFIGURATION_KEYS` of their saved
    CLI config (model, data and training budget; not the seed, run names, loggers or devices).
    ``data.seed`` is the seed too: the CLI links it to ``seed_everything``."""
    values = {key: _lookup(config, key) for key in CONFIGURATION_KEYS}
    if isinstance(values.get("data"), Mapping):
        values["data"] = {k: v for k, v in values["data"].items() if k != "seed"}
    return values


def in_config_order(results: Results, config: Mapping[str, Any]) -> Results:
    """``results`` with its datasets in the order of the config's ``data.test_datasets`` (the
    order the user gave; a results file may list them otherwise), the others after them."""
    order = list(_lookup(config, "data.test_datasets") or {})
    return dict(sorted(results.items(),
                       key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def run_seed(run_dir: Path, config: Mapping[str, Any]) -> int | None:
    """The run's ``seed_everything``, else the ``N`` of a ``seed<N>`` directory name, else None."""
    seed = config.get("seed_everything")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    match = SEED_DIR.fullmatch(run_dir.name)
    return int(match.group(1)) if match else None


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
            config = saved_config(run_dir)
            return RunResults(name or run_dir.name, run_dir, kind, in_config_order(results, config),
                              encoder_switches(config), run_seed(run_dir, config),
                              configuration(config))
    raise CompareError(
        f"{run_dir}: no test metrics found (looked at {results_csv.relative_to(run_dir)}, "
        "csv/version_*/metrics.csv "
        "and wandb/offline-run-*; run `str-lightning test` on it first)")


# ---------------------------------------------------------------------- groups
@dataclass
class RunGroup:
    """The runs of one configuration, one per seed (a table row)."""

    name: str
    runs: list[RunResults]

    @property
    def switches(self) -> dict[str, bool]:
        return self.runs[0].switches

    @property
    def seeds(self) -> list[int | None]:
        return [run.seed for run in self.runs]

    def values(self, column: tuple[str, str]) -> list[float]:
        """The column's value of every run that has it."""
        dataset, metric = column
        return [v for r in self.runs if (v := r.results.get(dataset, {}).get(metric)) is not None]


def seed_directories(path: Path) -> list[Path]:
    """The ``seed<N>`` run directories of an experiment directory, by seed ([] if none)."""
    found = [(int(m.group(1)), p) for p in path.iterdir() if p.is_dir()
             and (m := SEED_DIR.fullmatch(p.name))] if path.is_dir() else []
    return [p for _, p in sorted(found)]


def experiment_of(path: Path) -> tuple[Path, list[Path]]:
    """``(experiment directory, its run directories)`` of a ``RUN_DIR`` argument: an experiment
    directory means all its seeds, a ``seed<N>`` directory that seed of its parent, any other
    directory a run of its own."""
    if seeds := seed_directories(path):
        return path, seeds
    if SEED_DIR.fullmatch(path.name):
        return path.parent, [path]
    return path, [path]


def _first_difference(a: Any, b: Any, prefix: str) -> str | None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in dict.fromkeys([*a, *b]):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}")
            if found:
                return found
        return None
    return None if a == b else f"{prefix}: {a!r} vs {b!r}"


def check_one_configuration(group: RunGroup) -> None:
    """Raise :class:`CompareError` unless the group's runs differ in nothing but their seed."""
    seeds = [s for s in group.seeds if s is not None]
    if len(seeds) != len(set(seeds)):
        raise CompareError(f"{group.name}: seed repeated among {[str(r.run_dir) for r in group.runs]}")
    first = group.runs[0]
    for run in group.runs[1:]:
        difference = _first_difference(first.configuration, run.configuration, "config")
        if difference:
            raise CompareError(
                f"{group.name}: {first.run_dir} and {run.run_dir} are not one configuration "
                f"({difference.removeprefix('config.')}); the seeds of an experiment must differ "
                "only in seed_everything (give a changed configuration its own run.experiment)")


def load_groups(paths: Sequence[str | Path], names: Sequence[str] | None = None,
                source: str = "auto") -> list[RunGroup]:
    """One :class:`RunGroup` per experiment among ``paths`` (see :func:`experiment_of`), in
    first-seen order; ``names`` name the groups (default: the experiment directory names)."""
    members: dict[Path, list[Path]] = {}
    for path in map(Path, paths):
        if not path.is_dir():
            raise CompareError(f"run directory {path} does not exist")
        experiment, run_dirs = experiment_of(path)
        members.setdefault(experiment, [])
        members[experiment] += [d for d in run_dirs if d not in members[experiment]]
    if names and len(names) != len(members):
        raise CompareError(f"--names: {len(names)} names for {len(members)} experiments "
                           f"({', '.join(map(str, members))})")
    groups = []
    for index, (experiment, run_dirs) in enumerate(members.items()):
        name = names[index] if names else experiment.name
        group = RunGroup(name, [load_run(d, name, source) for d in run_dirs])
        check_one_configuration(group)
        groups.append(group)
    return groups


# ---------------------------------------------------------------------- table
@dataclass
class ComparisonTable:
    """Rows of run groups; ``columns`` are (dataset, metric); ``switch_names`` the Table-2
    columns; differences are taken from the ``reference`` row."""

    groups: list[RunGroup]
    columns: list[tuple[str, str]]
    switch_names: list[str]
    reference: RunGroup

    def summary(self, group: RunGroup, column: tuple[str, str]) -> Summary | None:
        values = group.values(column)
        return summarize(values) if values else None

    def interval(self, group: RunGroup, column: tuple[str, str]) -> Interval | None:
        """95 % Welch t interval of ``group``'s mean minus the reference's (None: fewer than two
        seeds on either side, or the reference row itself)."""
        if group is self.reference:
            return None
        return welch_interval(self.reference.values(column), group.values(column), CONFIDENCE)

    def best(self, column: tuple[str, str]) -> float | None:
        means = [s.mean for g in self.groups if (s := self.summary(g, column))]
        return min(means) if means else None


def build_table(groups: list[RunGroup], datasets: Sequence[str] | None = None,
                metrics: Sequence[str] | None = None, layout: str = "table1",
                reference: str | None = None) -> ComparisonTable:
    """Columns for ``datasets`` x ``metrics`` (default: all seen, in first-seen / paper order);
    ``layout="table2"`` adds the encoder switches that differ between the rows; ``reference``
    names the row differences are taken from (default: the first)."""
    if layout not in ("table1", "table2"):
        raise CompareError(f"unknown layout {layout!r}; expected 'table1' or 'table2'")
    runs = [r for g in groups for r in g.runs]
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
        names = list(dict.fromkeys(k for g in groups for k in g.switches))
        switches = [k for k in names if len({g.switches.get(k) for g in groups}) > 1]
    by_name = {g.name: g for g in groups}
    if reference is not None and reference not in by_name:
        raise CompareError(f"--reference {reference!r} is not a row; rows: {list(by_name)}")
    return ComparisonTable(groups, columns, switches, by_name[reference] if reference else groups[0])


def _header(column: tuple[str, str]) -> str:
    dataset, metric = column
    return f"{dataset} {METRIC_LABELS.get(metric, metric)} ↓"


def format_summary(summary: Summary | None) -> str:
    """``mean ± std`` (one decimal), just ``mean`` for one seed, ``–`` for no value."""
    if summary is None:
        return "–"
    return f"{summary.mean:.1f}" if summary.std is None else f"{summary.mean:.1f} ± {summary.std:.1f}"


def format_interval(interval: Interval | None) -> str:
    """``+d [low, high]``, with `` *`` when significant; ``n/a`` without an interval."""
    if interval is None:
        return "n/a"
    text = f"{interval.difference:+.1f} [{interval.low:+.1f}, {interval.high:+.1f}]"
    return f"{text} *" if interval.significant else text


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def to_markdown(table: ComparisonTable) -> str:
    """Mean ± std over seeds (the best mean of each column in bold, ✓/✗ for switches, ``n`` the
    seeds per row), then each row's difference from the reference with its 95 % interval."""
    header = ["Method", *table.switch_names, "n", *map(_header, table.columns)]
    lines = [_row(header), "|" + "---|" * len(header)]
    for group in table.groups:
        cells = [group.name]
        cells += [{True: "✓", False: "✗"}.get(group.switches.get(k), "") for k in table.switch_names]
        cells.append(str(len(group.runs)))
        for column in table.columns:
            summary = table.summary(group, column)
            text = format_summary(summary)
            best = summary is not None and summary.mean == table.best(column)
            cells.append(f"**{text}**" if best else text)
        lines.append(_row(cells))
    caption = (f"Difference from {table.reference.name} (row − {table.reference.name}; "
               f"{CONFIDENCE:.0%} Welch t interval over seeds; * = the interval excludes 0):")
    lines += ["", caption, "", _row(["Method", *map(_header, table.columns)]),
              "|" + "---|" * (1 + len(table.columns))]
    for group in table.groups:
        cells = [group.name]
        for column in table.columns:
            cells.append("reference" if group is table.reference
                         else format_interval(table.interval(group, column)))
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("std", "n", "diff", "ci_low", "ci_high", "significant")


def write_csv(table: ComparisonTable, path: Path) -> Path:
    """One row per group, full precision: per column ``<dataset>/<metric>`` (the mean) and
    ``<dataset>/<metric>/{std,n,diff,ci_low,ci_high,significant}``."""
    def number(value: float | None) -> str:
        return "" if value is None else repr(value)

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        column_names = [f"{d}/{m}{suffix}" for d, m in table.columns
                        for suffix in ("", *(f"/{f}" for f in CSV_FIELDS))]
        writer.writerow(["method", *table.switch_names, "n", "seeds", *column_names, "reference",
                         "source", "run_dirs"])
        for group in table.groups:
            cells = []
            for column in table.columns:
                summary, interval = table.summary(group, column), table.interval(group, column)
                cells += [number(summary and summary.mean), number(summary and summary.std),
                          summary.n if summary else 0]
                cells += ([number(interval.difference), number(interval.low), number(interval.high),
                           interval.significant] if interval else ["", "", "", ""])
            writer.writerow([group.name, *(group.switches.get(k, "") for k in table.switch_names),
                             len(group.runs), " ".join(str(s) for s in group.seeds), *cells,
                             table.reference.name, " ".join(sorted({r.source for r in group.runs})),
                             " ".join(str(r.run_dir) for r in group.runs)])
    return path


def bar_chart(table: ComparisonTable, path: Path) -> Path:
    """One bar group per (dataset, metric) column, one bar per row: the mean over seeds with the
    standard deviation as error bar (none for one seed); the best mean outlined."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 2.4 * len(table.columns)), 3.4))
    axes = fig.subplots(1, len(table.columns), squeeze=False)[0]
    colours = [f"C{i % 10}" for i in range(len(table.groups))]
    for ax, column in zip(axes, table.columns):
        summaries = [table.summary(g, column) for g in table.groups]
        heights = [s.mean if s else 0.0 for s in summaries]
        errors = [s.std if s and s.std is not None else 0.0 for s in summaries]
        bars = ax.bar(range(len(summaries)), heights, yerr=errors, capsize=3, color=colours,
                      error_kw={"elinewidth": 1})
        for bar, summary in zip(bars, summaries):
            if summary is not None and summary.mean == table.best(column):
                bar.set_edgecolor("black")
                bar.set_linewidth(2)
        ax.set_xticks(range(len(summaries)), [g.name for g in table.groups], rotation=30,
                      ha="right", fontsize=7)
        ax.set_title(_header(column), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("mean ± std over seeds", fontsize=8)
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
    """Log the table (means and standard deviations) and chart to a new W&B run
    (``job_type="compare"``); returns its URL or, offline, its directory. The mode follows
    ``WANDB_MODE`` (online by default)."""
    import wandb

    columns = ["method", *table.switch_names, "n",
               *(f"{d}/{m}{s}" for d, m in table.columns for s in ("", "/std"))]
    rows = []
    for group in table.groups:
        summaries = [table.summary(group, c) for c in table.columns]
        rows.append([group.name, *(group.switches.get(k) for k in table.switch_names),
                     len(group.runs), *(v for s in summaries for v in ((s.mean, s.std) if s else
                                                                        (None, None)))])
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
        "compare", help="compare the test results of runs over seeds as in the paper's tables",
        description="Read the test results of local run directories (results/test_results.csv, "
        "the CSV logger's metrics.csv or offline W&B files; no network needed), group the seeds "
        "of each experiment, and write a Markdown table of mean ± std over seeds (best means in "
        "bold) with each row's difference from a reference row and its 95% Welch t interval "
        "(* = excludes 0), a CSV and a PNG bar chart with error bars.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="experiment directories (all their seed<N> runs), seed<N> run "
                        "directories, or other run directories")
    parser.add_argument("--out", type=Path, default=Path("comparison.md"),
                        help="Markdown output; the .csv and .png go next to it")
    parser.add_argument("--names", nargs="+",
                        help="row names, one per experiment (default: the experiment directory names)")
    parser.add_argument("--reference", metavar="NAME",
                        help="the row differences are taken from (default: the first row)")
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
        groups = load_groups(args.run_dirs, args.names, args.source)
        table = build_table(groups, args.datasets, args.metrics, args.layout, args.reference)
    except CompareError as err:
        print(f"str-lightning compare: error: {err}", file=sys.stderr)
        return 2
    paths = write_report(table, args.out)
    print(to_markdown(table))
    print("\n".join(f"{kind}: {path}" for kind, path in paths.items()))
    if args.wandb:
        print("wandb:", push_to_wandb(table, paths["png"], args.wandb_project, args.out.stem))
    return 0
