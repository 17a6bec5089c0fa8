"""Draw the learning-curve figure of docs/results.md into docs/img/learning_curves.png.

For each encoder, validation PA-MPJPE (synthetic val) against training batches (not optimizer
steps: VIBE-like takes two per batch): the budgeted
recipe (``configs/experiment/synthetic_*.yaml``, one seed) beside the same recipe run four
times as long (``--trainer.max_epochs 20``: its one-cycle schedule stretched over 8,000
batches), and the recipe before it (constant learning rate 1e-3, 1,000 batches) where given. The curves come
from each run's CSV-logger ``metrics.csv``.

Run from the repository root after the runs exist:
``python docs/make_results_figures.py --budget R/ablations-synthetic/str_full/seed1
R/synthetic/tcmr/seed1 R/synthetic/vibe/seed1 R/synthetic/single_frame/seed1
--long R/curves/str/seed1 R/curves/tcmr/seed1 R/curves/vibe/seed1 R/curves/single_frame/seed1
[--before R/var-before/all/seed1]`` (``R``: the ``--run.root`` of the runs).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import yaml

from str_lightning.run_directory import RunDirectory

OUT = Path(__file__).parent / "img" / "learning_curves.png"
NAMES = ("STR", "TCMR-like", "VIBE-like", "single frame")
METRIC = "val/synthetic/pa_mpjpe"


def validation_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    """``(batches trained, validation PA-MPJPE)`` of a run's first CSV-logger version (its fit)."""
    path = RunDirectory(run_dir).csv_metrics_files()[0]
    config = yaml.safe_load((path.parent / RunDirectory.CONFIG_FILENAME).read_text())
    batches = config["data"]["steps_per_epoch"]
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get(METRIC)]
    return [(int(row["epoch"]) + 1) * batches for row in rows], [float(row[METRIC]) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", nargs=4, type=Path, required=True)
    parser.add_argument("--long", nargs=4, type=Path, required=True)
    parser.add_argument("--before", type=Path, help="STR with the recipe before (seed 1)")
    args = parser.parse_args()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    for ax, name, budget, long in zip(axes, NAMES, args.budget, args.long):
        ax.plot(*validation_curve(long), "o-", ms=3, color="0.55", label="4× the steps")
        ax.plot(*validation_curve(budget), "o-", ms=4, color="C0", label="the recipe")
        if args.before and name == "STR":
            ax.plot(*validation_curve(args.before), "s--", ms=3, color="C3",
                    label="recipe before (lr 1e-3)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("training batches", fontsize=8)
        ax.set_ylim(bottom=30, top=160)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("synthetic val PA-MPJPE (mm)", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == "__main__":
    main()
