"""Where the seed spread of a recipe comes from: each random source varied alone.

A run's seed (``seed_everything``) sets three random sources, which can also be set one by one:
the initial weights (``model.init_args.init_seed``), the order of the training windows
(``data.seed``) and what is left to the global random stream, dropout (``seed_everything``
itself). This script runs a recipe with all three varied together over the seeds, and with each
one varied alone while the others stay at the first seed, tests every run's best checkpoint (the
recipe's own selection) and its last one, and tabulates the standard deviation over the seeds of
the test metrics per source. The last column group, "stopping point", is the spread of
(best − last) over the "all" runs: what selecting a checkpoint on validation adds or removes.

Usage:
    python benchmarks/seed_variance.py commands --config C --project P [--root R] [--seeds 1 2 3 4 5]
        | xargs -P 2 -I{} bash -c {}        # the runs, two at a time (OMP_NUM_THREADS=1 each)
    python benchmarks/seed_variance.py table --project P [--root R] [--datasets ...] [--metrics ...]

Runs are named ``<root>/<P>/<source>-<seed>/seed<N>`` for one source varied alone, ``all/seed<N>``
for all three, and ``<name>-last`` for the test of a run's last checkpoint.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from str_lightning.reporting.results_files import read_results_csv
from str_lightning.runs.directory import RunDirectory

SOURCES = {  # source -> the options that vary it alone (the others stay at the first seed)
    "init": "--model.init_args.init_seed {seed} --data.seed {first} --seed_everything {first}",
    "data": "--data.seed {seed} --model.init_args.init_seed {first} --seed_everything {first}",
    "dropout": "--seed_everything {seed} --model.init_args.init_seed {first} --data.seed {first}",
}
CLI = "str-lightning"


def runs(seeds: list[int]) -> list[tuple[str, int, str]]:
    """``(experiment, seed directory, options)`` of every run; a source's run at the first
    seed is the "all" run of that seed, so it is not repeated."""
    first = seeds[0]
    planned = [("all", seed, f"--seed_everything {seed}") for seed in seeds]
    for source, options in SOURCES.items():
        for seed in seeds[1:]:
            directory_seed = seed if source == "dropout" else first
            planned.append((f"{source}-{seed}", directory_seed, options.format(seed=seed, first=first)))
    return planned


def commands(args: argparse.Namespace) -> None:
    """One shell line per run: fit, test of the last checkpoint (into ``<name>-last``), test
    of the best one."""
    for experiment, seed, options in runs(args.seeds):
        common = (f"--config {shlex.quote(args.config)} --run.root {shlex.quote(args.root)} "
                  f"--run.project {shlex.quote(args.project)} {options} {args.extra}")
        run_dir = RunDirectory(Path(args.root) / args.project / experiment / f"seed{seed}")
        print(f"{CLI} fit {common} --run.experiment {experiment} && "
              f"{CLI} test {common} --run.experiment {experiment}-last "
              f"--ckpt_path {shlex.quote(str(run_dir.last_checkpoint))} && "
              f"{CLI} test {common} --run.experiment {experiment} --ckpt_path best")


def results(root: Path, experiment: str, seed: int) -> dict[str, dict[str, float]]:
    path = RunDirectory(root / experiment / f"seed{seed}").results_csv
    if not path.is_file():
        raise SystemExit(f"no test results in {path.parent.parent}: run the commands first")
    return read_results_csv(path)


def table(args: argparse.Namespace) -> None:
    """Standard deviation over the seeds per random source, and of best − last."""
    root = Path(args.root) / args.project
    first = args.seeds[0]
    varied = {"all": [("all", s) for s in args.seeds]}
    for source in SOURCES:
        varied[source] = [("all", first)] + [
            (f"{source}-{s}", s if source == "dropout" else first) for s in args.seeds[1:]]
    columns = [(d, m) for d in args.datasets for m in args.metrics]
    header = ["source varied", "n", *(f"{d} {m}" for d, m in columns)]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for source, members in varied.items():
        values = [results(root, e, s) for e, s in members]
        cells = [f"{statistics.stdev(v[d][m] for v in values):.2f}" for d, m in columns]
        print(f"| {source} | {len(values)} | " + " | ".join(cells) + " |")
    gaps = [(results(root, "all", s), results(root, "all-last", s)) for s in args.seeds]
    cells = [f"{statistics.stdev(b[d][m] - last[d][m] for b, last in gaps):.2f} "
             f"(mean {statistics.fmean(b[d][m] - last[d][m] for b, last in gaps):+.2f})"
             for d, m in columns]
    print(f"| stopping point (best − last) | {len(gaps)} | " + " | ".join(cells) + " |")
    last = [g[1] for g in gaps]
    cells = [f"{statistics.stdev(v[d][m] for v in last):.2f}" for d, m in columns]
    print(f"| all, last checkpoint | {len(last)} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for name in ("commands", "table"):
        command = sub.add_parser(name)
        command.add_argument("--project", required=True)
        command.add_argument("--root", default="runs")
        command.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    sub.choices["commands"].add_argument("--config", required=True)
    sub.choices["commands"].add_argument("--extra", default="", help="more CLI options, quoted")
    sub.choices["table"].add_argument("--datasets", nargs="+", default=["synthetic", "synthetic-dark"])
    sub.choices["table"].add_argument("--metrics", nargs="+", default=["pa_mpjpe", "accel"])
    args = parser.parse_args()
    {"commands": commands, "table": table}[args.action](args)


if __name__ == "__main__":
    main()
