"""Learning curves: the budgeted recipe's runs beside one run of each encoder trained longer.

    python docs/make_learning_curves.py \
        --pair STR runs/ablations-synthetic/str_full runs/curves/str \
        --pair TCMR-like runs/synthetic/tcmr runs/curves/tcmr ... \
        --out docs/img/learning_curves.png

Each pair is an experiment directory of budgeted runs (every ``seed<N>`` below it) and the run
directory (or experiment directory of one seed) trained longer. Plots validation PA-MPJPE
against the training step (the longer run's schedule is stretched, not continued: it anneals
at its own last step) and prints, per encoder, the last validation value of the budgeted runs
(mean over seeds) and of the longer run, with their test figures.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

METRIC = "val/synthetic/pa_mpjpe"
TESTS = ("test/synthetic/pa_mpjpe", "test/synthetic-dark/pa_mpjpe")


def seed_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.glob("seed*") if p.is_dir()) or [path]


def validation_curve(run: Path) -> list[tuple[int, float]]:
    """(global step, validation PA-MPJPE) of the run's fit, from its CSV logger."""
    for metrics in sorted(run.glob("csv/version_*/metrics.csv")):
        with metrics.open() as handle:
            points = [(int(row["step"]), float(row[METRIC])) for row in csv.DictReader(handle)
                      if row.get(METRIC)]
        if points:
            return points
    raise SystemExit(f"{run}: no {METRIC} in csv/version_*/metrics.csv")


def test_figures(run: Path) -> list[float]:
    with (run / "results" / "test_results.csv").open() as handle:
        rows = {row["dataset"]: row for row in csv.DictReader(handle)}
    return [float(rows[key.split("/")[1]]["pa_mpjpe"]) for key in TESTS]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=3, action="append", required=True,
                        metavar=("NAME", "BUDGETED", "LONGER"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fig, axes = plt.subplots(1, len(args.pair), figsize=(3.6 * len(args.pair), 3.4), sharey=True)
    print("| encoder | budgeted: last val | longer: last val | budgeted test / test-dark "
          "| longer test / test-dark |\n|---|---|---|---|---|")
    for ax, (name, budgeted, longer) in zip(axes, args.pair):
        budget_runs, long_run = seed_dirs(Path(budgeted)), seed_dirs(Path(longer))[0]
        for run in budget_runs:
            curve = validation_curve(run)
            ax.plot([s for s, _ in curve], [v for _, v in curve], color="0.6",
                    lw=1, label="budgeted (each seed)" if run == budget_runs[0] else None)
        curve = validation_curve(long_run)
        ax.plot([s for s, _ in curve], [v for _, v in curve], color="C3", lw=2,
                label=f"{curve[-1][0] // validation_curve(budget_runs[0])[-1][0]}x longer")
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        last = mean([validation_curve(run)[-1][1] for run in budget_runs])
        tests = [mean(values) for values in zip(*(test_figures(run) for run in budget_runs))]
        long_tests = test_figures(long_run)
        print(f"| {name} | {last:.1f} ({len(budget_runs)} seeds) | {curve[-1][1]:.1f} | "
              f"{tests[0]:.1f} / {tests[1]:.1f} | {long_tests[0]:.1f} / {long_tests[1]:.1f} |")
    axes[0].set_ylabel("validation PA-MPJPE (mm)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
