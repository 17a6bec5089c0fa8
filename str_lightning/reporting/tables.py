"""The comparison tables of ``str-lightning compare``: one row per experiment, measured over seeds.

:func:`build_table` makes a :class:`ComparisonTable` of :class:`RunGroup` rows and one column
per (dataset, metric), PA-MPJPE, MPJPE, MPVPE, Accel as in the paper's Table 1, each cell the mean
± sample standard deviation over the row's ``n`` seeds; ``layout="table2"`` adds the ablation
switches (the boolean ``init_args`` of the encoder that differ between the rows) as in Table 2.
Every metric is an error, so the lowest mean of each column is set in bold. The second table
gives each row's difference from a reference row (default the first; row − reference) with its
95 % t interval, paired by seed when both rows ran the same seeds (at least two) and Welch's
otherwise, marked significant when it excludes 0, and the minimum detectable effect of that
design (80 % power, two-sided 5 %); a target effect adds the seeds per row that would detect it.
:func:`write_report` writes them as Markdown, CSV and a PNG forest plot of the differences;
:func:`push_to_wandb` logs them to a W&B run. docs/results.md explains how to read them.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from str_lightning.evaluation.metrics import METRIC_LABELS, METRIC_UNITS
from str_lightning.reporting.results_files import CompareError, ordered_metrics
from str_lightning.reporting.runs import RunGroup
from str_lightning.reporting.stats import (
    ALPHA,
    PAIRED,
    POWER,
    Interval,
    Summary,
    paired_interval,
    paired_seeds_needed,
    summarize,
    welch_interval,
    welch_seeds_needed,
)

CONFIDENCE = 1.0 - ALPHA


# ---------------------------------------------------------------------- table
@dataclass
class ComparisonTable:
    """Rows of run groups; ``columns`` are (dataset, metric); ``switch_names`` the Table-2
    columns; differences are taken from the ``reference`` row (row − reference)."""

    groups: list[RunGroup]
    columns: list[tuple[str, str]]
    switch_names: list[str]
    reference: RunGroup

    @property
    def compared(self) -> list[RunGroup]:
        """The rows that have a difference from the reference: all but the reference."""
        return [g for g in self.groups if g is not self.reference]

    def summary(self, group: RunGroup, column: tuple[str, str]) -> Summary | None:
        values = group.values(column)
        return summarize(values) if values else None

    def paired(self, group: RunGroup) -> bool:
        """Whether ``group`` is compared with the reference seed by seed: both rows ran the same
        seeds, at least two."""
        seeds = group.seeds
        return len(seeds) >= 2 and None not in seeds and sorted(seeds) == sorted(self.reference.seeds)

    def pairs(self, group: RunGroup, column: tuple[str, str]) -> tuple[list[float], list[float]]:
        """The reference's and ``group``'s values of ``column`` on the seeds both have, in seed
        order."""
        reference, row = self.reference.values_by_seed(column), group.values_by_seed(column)
        seeds = sorted(set(reference) & set(row))
        return [reference[s] for s in seeds], [row[s] for s in seeds]

    def interval(self, group: RunGroup, column: tuple[str, str]) -> Interval | None:
        """95 % t interval of ``group`` minus the reference: paired by seed when
        :meth:`paired`, Welch's otherwise (None: the reference row itself, or fewer than two
        seeds on either side)."""
        if group is self.reference:
            return None
        if self.paired(group):
            return paired_interval(*self.pairs(group, column), CONFIDENCE)
        return welch_interval(self.reference.values(column), group.values(column), CONFIDENCE)

    def intervals(self) -> list[Interval]:
        """Every interval of the difference table."""
        return [i for g in self.compared for c in self.columns if (i := self.interval(g, c))]

    def seeds_needed(self, group: RunGroup, column: tuple[str, str], effect: float) -> int | None:
        """Seeds per row that would detect a true difference of ``effect`` between ``group`` and
        the reference with 80 % power in ``group``'s design, were the spreads what they are now
        (None where :meth:`interval` is None)."""
        if self.interval(group, column) is None:
            return None
        if self.paired(group):
            reference, row = self.pairs(group, column)
            return paired_seeds_needed(summarize([b - a for a, b in zip(reference, row)]).std, effect)
        return welch_seeds_needed(self.summary(self.reference, column).std,
                                  self.summary(group, column).std, effect)

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


# ---------------------------------------------------------------------- text
def _header(column: tuple[str, str]) -> str:
    dataset, metric = column
    return f"{dataset} {METRIC_LABELS.get(metric, metric)} ↓"


def _design(table: ComparisonTable, group: RunGroup) -> str:
    if group is table.reference:
        return "reference"
    if table.paired(group):
        return "paired t"
    return "Welch t" if min(len(group.runs), len(table.reference.runs)) >= 2 else "n/a"


def format_summary(summary: Summary | None) -> str:
    """``mean ± std`` (one decimal), just ``mean`` for one seed, ``–`` for no value."""
    if summary is None:
        return "–"
    return f"{summary.mean:.1f}" if summary.std is None else f"{summary.mean:.1f} ± {summary.std:.1f}"


def format_interval(interval: Interval | None) -> str:
    """``+d [low, high] (MDE m)``, `` *`` after the interval when it excludes 0; ``n/a`` without
    an interval."""
    if interval is None:
        return "n/a"
    text = f"{interval.difference:+.1f} [{interval.low:+.1f}, {interval.high:+.1f}]"
    mark = " *" if interval.significant else ""
    return f"{text}{mark} (MDE {interval.detectable_effect():.1f})"


def chance_note(count: int) -> str:
    """How many of ``count`` separate 95 % intervals would exclude 0 by chance alone."""
    return (f"{count} interval{'s' * (count != 1)} at {CONFIDENCE:.0%}: about {ALPHA * count:.1f} "
            f"of them would exclude 0 by chance alone if no row differed from the reference.")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _difference_rows(table: ComparisonTable, cell: Any) -> list[str]:
    """A Markdown table: method, design, then ``cell(group, column)`` per column (``reference``
    on the reference row)."""
    lines = [_row(["Method", "interval", *map(_header, table.columns)]),
             "|" + "---|" * (2 + len(table.columns))]
    for group in table.groups:
        cells = [("reference" if group is table.reference else cell(group, c)) for c in table.columns]
        lines.append(_row([group.name, _design(table, group), *cells]))
    return lines


def means_markdown(table: ComparisonTable) -> list[str]:
    """Mean ± std over seeds (the best mean of each column in bold, ✓/✗ for switches, ``n`` the
    seeds per row)."""
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
    return lines


def differences_markdown(table: ComparisonTable) -> list[str]:
    """Each row's difference from the reference with its interval and detectable effect, under a
    caption that says how to read them."""
    ref = table.reference.name
    caption = (
        f"Difference from {ref} (row − {ref}; negative = lower error than {ref}) with its "
        f"{CONFIDENCE:.0%} t interval over seeds and, in brackets, the minimum detectable effect "
        f"(MDE: the smallest true difference these seeds detect with {POWER:.0%} power at a "
        f"two-sided {ALPHA:.0%} level). Interval `paired t`: the row ran the same seeds as {ref} "
        "and is compared seed by seed; `Welch t`: compared as independent samples. * = "
        "significant (the interval excludes 0); without *, the difference is not significant "
        "and the interval is the range the seeds leave open. n/a: fewer than two seeds on "
        "either side.")
    return [caption, "", *_difference_rows(table, lambda g, c: format_interval(table.interval(g, c))),
            "", chance_note(len(table.intervals()))]


def seeds_needed_markdown(table: ComparisonTable, effect: float) -> list[str]:
    """Per row and column, the seeds that would detect a difference of ``effect``."""
    def cell(group: RunGroup, column: tuple[str, str]) -> str:
        needed = table.seeds_needed(group, column, effect)
        return "n/a" if needed is None else str(needed)

    ref = table.reference.name
    caption = (f"Seeds per row that would detect a true difference of {effect:g} (in each metric's "
               f"unit) from {ref} with {POWER:.0%} power at a two-sided {ALPHA:.0%} level, were the "
               f"spreads what they are now (paired t: seeds run by both rows; Welch t: as many "
               f"seeds in {ref} as in the row):")
    return [caption, "", *_difference_rows(table, cell)]


def to_markdown(table: ComparisonTable, target_effect: float | None = None) -> str:
    """The means table, the differences table and, with ``target_effect``, the seeds it needs."""
    lines = [*means_markdown(table), "", *differences_markdown(table)]
    if target_effect is not None:
        lines += ["", *seeds_needed_markdown(table, target_effect)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- files
CSV_FIELDS = ("std", "n", "diff", "ci_low", "ci_high", "significant", "design", "mde")


def write_csv(table: ComparisonTable, path: Path) -> Path:
    """One row per group, full precision: per column ``<dataset>/<metric>`` (the mean) and
    ``<dataset>/<metric>/{std,n,diff,ci_low,ci_high,significant,design,mde}`` (``design``:
    ``paired`` or ``welch``; the difference columns empty without an interval)."""
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
                           interval.significant, interval.design, number(interval.detectable_effect())]
                          if interval else [""] * 6)
            writer.writerow([group.name, *(group.switches.get(k, "") for k in table.switch_names),
                             len(group.runs), " ".join(str(s) for s in group.seeds), *cells,
                             table.reference.name, " ".join(sorted({r.source for r in group.runs})),
                             " ".join(str(r.run_dir) for r in group.runs)])
    return path


def forest_plot(table: ComparisonTable, path: Path) -> Path:
    """The chart to read first: one panel per (dataset, metric) column, one line per row: its
    difference from the reference (a dot, filled when significant; round when paired, square
    when Welch) with its 95 % interval, the zero line, and ±MDE around zero shaded (a true
    difference outside the shading is one these seeds detect with 80 % power)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows, panels = table.compared, len(table.columns)
    across = min(3, panels)
    down = math.ceil(panels / across)
    fig = Figure(figsize=(max(4.8, 3.3 * across), down * (0.9 + 0.32 * max(1, len(rows))) + 1.1),
                 layout="constrained")
    axes = fig.subplots(down, across, squeeze=False, sharey=True).ravel()
    for ax, column in zip(axes, table.columns):
        _forest_panel(ax, table, rows, column)
    for ax in axes[panels:]:
        ax.set_visible(False)
    handles = [Line2D([], [], color="C3", marker="o", label="significant"),
               Line2D([], [], color="0.4", marker="o", markerfacecolor="white", label="not significant"),
               Line2D([], [], color="0.4", marker="o", linestyle="", label="paired t"),
               Line2D([], [], color="0.4", marker="s", linestyle="", label="Welch t"),
               Patch(color="0.87", label=f"±MDE ({POWER:.0%} power)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=5 if across > 1 else 3, fontsize=7,
               frameon=False)
    line_break = " " if across > 1 else "\n"
    fig.suptitle(f"Difference from {table.reference.name} (row − {table.reference.name}),"
                 f"{line_break}{CONFIDENCE:.0%} t intervals over seeds", fontsize=9)
    fig.savefig(path, dpi=110)
    return path


def _forest_panel(ax: Any, table: ComparisonTable, rows: list[RunGroup], column: tuple[str, str]) -> None:
    for y, group in enumerate(rows):
        interval = table.interval(group, column)
        if interval is None:
            ax.text(0, y, "n/a", ha="center", va="center", fontsize=7, color="0.4")
            continue
        mde = interval.detectable_effect()
        ax.fill_betweenx([y - 0.35, y + 0.35], -mde, mde, color="0.87", linewidth=0)
        colour = "C3" if interval.significant else "0.4"
        ax.plot([interval.low, interval.high], [y, y], color=colour, linewidth=1.6)
        ax.plot([interval.difference], [y], color=colour, marker="o" if interval.design == PAIRED else "s",
                markerfacecolor=colour if interval.significant else "white")
    if not rows:
        ax.text(0.5, 0.5, "no row besides the reference", ha="center", va="center",
                fontsize=7, transform=ax.transAxes)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [g.name for g in rows], fontsize=7)
    ax.set_ylim(max(1, len(rows)) - 0.5, -0.5)
    ax.set_title(_header(column), fontsize=8)
    ax.set_xlabel(METRIC_UNITS.get(column[1], ""), fontsize=7)
    ax.tick_params(axis="x", labelsize=7)


def write_report(table: ComparisonTable, out: str | Path, target_effect: float | None = None) -> dict[str, Path]:
    """Write ``out`` (Markdown, :func:`to_markdown`) and the CSV and PNG forest plot next to it
    (same stem)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(table, target_effect))
    return {"markdown": out, "csv": write_csv(table, out.with_suffix(".csv")),
            "png": forest_plot(table, out.with_suffix(".png"))}


DIFFERENCE_COLUMNS = ("method", "dataset", "metric", "design", "difference", "low", "high", "mde",
                      "significant")


def difference_rows(table: ComparisonTable) -> list[list[Any]]:
    """The difference table in long form, one row per (row, column) besides the reference, in
    :data:`DIFFERENCE_COLUMNS` (``None`` where there is no interval)."""
    rows = []
    for group in table.compared:
        for dataset, metric in table.columns:
            interval = table.interval(group, (dataset, metric))
            values = ([interval.design, interval.difference, interval.low, interval.high,
                       interval.detectable_effect(), interval.significant] if interval else [None] * 6)
            rows.append([group.name, dataset, metric, *values])
    return rows


def push_to_wandb(table: ComparisonTable, forest: Path, project: str, name: str) -> str:
    """Log the means (``comparison/table``), the differences (``comparison/differences``,
    :func:`difference_rows`) and the forest plot (``comparison/forest``) to a new W&B run
    (``job_type="compare"``); returns its URL or, offline, its directory. The mode follows
    ``WANDB_MODE`` (online by default) and the directory ``WANDB_DIR`` as they are at the call."""
    import wandb

    columns = ["method", *table.switch_names, "n",
               *(f"{d}/{m}{s}" for d, m in table.columns for s in ("", "/std"))]
    rows = []
    for group in table.groups:
        summaries = [table.summary(group, c) for c in table.columns]
        rows.append([group.name, *(group.switches.get(k) for k in table.switch_names),
                     len(group.runs), *(v for s in summaries for v in ((s.mean, s.std) if s else
                                                                        (None, None)))])
    # the environment as it is now, not as it was when this process first set W&B up
    run = wandb.init(project=project, name=name, job_type="compare",
                     mode=os.environ.get("WANDB_MODE"), dir=os.environ.get("WANDB_DIR"))
    try:
        run.log({"comparison/table": wandb.Table(columns=columns, data=rows),
                 "comparison/differences": wandb.Table(columns=list(DIFFERENCE_COLUMNS),
                                                       data=difference_rows(table)),
                 "comparison/forest": wandb.Image(str(forest))})
        return run.url or run.dir
    finally:
        run.finish()
