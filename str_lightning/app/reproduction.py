"""``str-lightning reproduce released``: a released TCMR / VIBE checkpoint through this project's
converters, inference and metrics, beside the figures its authors publish (docs/evaluation.md).

The checkpoint's file name says which release it is (:data:`~str_lightning.evaluation.published.RELEASES`:
its test sets and published figures). Every test set of the release whose shard directory exists
below ``--data-root`` is evaluated in one ``str-lightning test`` with
``configs/experiment/released_<method>.yaml`` (TCMR's static-repeat edges for TCMR), the model
sized from the checkpoint itself. Each directory's ``conversion.json`` must name the file that
belongs there (docs/data.md, "The file map"). The figures are read back from the test's record
(``results/test_results.csv``) and printed beside the published ones, with the difference and
whether it lies within the agreement to expect (``Release.agreement``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from datamodules.converters import REPORT_NAME, files_for_directory
from datamodules.schema import DataError
from str_lightning.evaluation.metrics import METRIC_LABELS, METRIC_UNITS
from str_lightning.evaluation.published import RELEASES, Release, release_of
from str_lightning.nets.released import (
    GENERATOR_KEY,
    read_released_checkpoint,
    released_architecture,
)

log = logging.getLogger(__name__)

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "experiment"
ORDER = ("pa_mpjpe", "mpjpe", "mpvpe", "accel")


class ReproduceError(DataError):
    """A checkpoint, data root or shard directory that cannot be reproduced (says what to do)."""


@dataclass(frozen=True)
class Comparison:
    """One figure of ours beside the published one; ``agreement``: the largest difference the
    two protocols explain (None: not comparable)."""

    dataset: str
    metric: str
    ours: float
    published: float | None
    agreement: float | None = None

    @property
    def difference(self) -> float | None:
        return None if self.published is None else self.ours - self.published

    @property
    def verdict(self) -> str:
        if self.difference is None:
            return "no published figure"
        if self.agreement is None:
            return "not comparable"
        return "agrees" if abs(self.difference) <= self.agreement else "DIFFERS"


@dataclass(frozen=True)
class Reproduction:
    """What ``reproduce released`` found: per test set and metric a :class:`Comparison`, the
    frames evaluated per test set, and the run directory holding the test's record."""

    release: Release
    comparisons: list[Comparison]
    frames: dict[str, int]
    run_dir: Path


def resolve_release(method: str, checkpoint: Path, name: str | None) -> Release:
    release = RELEASES[name] if name else release_of(checkpoint)
    if release is None:
        raise ReproduceError(
            f"{checkpoint}: not a released file name ({', '.join(RELEASES)}); if it is one of "
            "them renamed, say which with --release NAME")
    if release.method != method:
        raise ReproduceError(f"{checkpoint}: {release.file} is a {release.method.upper()} "
                             f"release, but --method {method} was given")
    return release


def converted_test_sets(release: Release, data_root: Path) -> dict[str, Path]:
    """The converted test directories of ``release`` below ``data_root``, each checked to hold
    the file the file map puts there; missing ones are logged, all missing is an error."""
    found, missing = {}, []
    for dataset, directory in release.tests.items():
        path = data_root / directory
        if (path / "manifest.json").is_file():
            _check_converted_from(path, directory)
            found[dataset] = path.resolve()  # the config's data.root joins relative paths
        else:
            missing.append(directory)
    commands = [next(e for e in files_for_directory(directory) if e.source == release.method)
                .command(root=str(data_root)) for directory in missing]
    if not found:
        raise ReproduceError(f"{release.file} was published on {', '.join(release.tests.values())}"
                             f", none of which is converted below {data_root}; convert them:\n  "
                             + "\n  ".join(commands))
    for command in commands:
        log.warning("not converted, skipped: %s", command)
    return found


def _check_converted_from(path: Path, directory: str) -> None:
    report = path / REPORT_NAME
    if not report.is_file():
        log.warning("%s: no %s, cannot check which file it was converted from", path, REPORT_NAME)
        return
    converted = json.loads(report.read_text())
    expected = files_for_directory(directory)
    if not any(converted.get("source") == f.source and Path(converted.get("db", "")).name
               == f.name for f in expected):
        names = " or ".join(f"{f.source.upper()}'s {f.name}" for f in expected)
        raise ReproduceError(
            f"{path}: converted from {converted.get('source', '?').upper()}'s "
            f"{Path(converted.get('db', '?')).name}, but the published figures were computed on "
            f"{names}: convert that file into it (docs/data.md, 'The file map')")


def cli_arguments(release: Release, checkpoint: Path, directories: dict[str, Path],
                  body_model: str, run_root: str, accelerator: str, num_workers: int) -> list[str]:
    """The ``str-lightning test`` arguments: the release's config, the model sized from the
    checkpoint (so any width of the released layout evaluates), the test sets found."""
    architecture = released_architecture(read_released_checkpoint(checkpoint, GENERATOR_KEY))
    tests = ", ".join(f"{name}: {path}" for name, path in directories.items())
    encoder = json.dumps(architecture["encoder"])
    return ["test", "--config", str(CONFIGS / f"released_{release.method}.yaml"),
            "--run.experiment", release.file.removesuffix(".pth.tar"),
            "--run.root", run_root, "--trainer.accelerator", accelerator,
            "--model.init_args.released_checkpoint", str(checkpoint),
            "--model.init_args.body_model", body_model,
            f"--model.init_args.encoder={encoder}",
            "--model.init_args.regressor_hidden_size", str(architecture["regressor_hidden_size"]),
            "--data.test_datasets", f"{{{tests}}}", "--data.num_workers", str(num_workers)]


def reproduce_released(method: str, checkpoint: Path, data_root: Path, body_model: str,
                       release_name: str | None = None, run_root: str = "runs",
                       accelerator: str = "auto", num_workers: int = 4) -> Reproduction:
    """Evaluate ``checkpoint`` on its release's converted test sets and compare."""
    from str_lightning.app.lightning_cli import cli_on
    from str_lightning.reporting.results_files import RECORD_COLUMNS, read_results_csv
    from str_lightning.runs.directory import RunDirectory

    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    release = resolve_release(method, checkpoint, release_name)
    directories = converted_test_sets(release, data_root)
    cli = cli_on(cli_arguments(release, checkpoint, directories, body_model, run_root, accelerator,
                               num_workers))
    run = RunDirectory(cli.trainer.default_root_dir)
    measured = read_results_csv(run.results_csv, [c for c in RECORD_COLUMNS if c != "frames"])
    comparisons = [Comparison(dataset, metric, figures[metric],
                              release.published.get(dataset, {}).get(metric),
                              release.agreement.get(metric))
                   for dataset, figures in measured.items()
                   for metric in ORDER if metric in figures]
    frames = {dataset: int(figures["frames"]) for dataset, figures in measured.items()}
    return Reproduction(release, comparisons, frames, run.path)


def comparison_markdown(reproduction: Reproduction, checkpoint: Path) -> str:
    """The table: per test set and metric, ours, published, difference, verdict; the frames
    evaluated per test set."""
    release = reproduction.release
    lines = [f"{checkpoint} ({release.file}): this project's protocol vs {release.source}", "",
             "| test set | metric | ours | published | difference | agreement to expect | |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {dataset} | frames evaluated | {count} | | | | |"
              for dataset, count in reproduction.frames.items()]
    for c in reproduction.comparisons:
        published = "–" if c.published is None else f"{c.published:g}"
        difference = "" if c.difference is None else f"{c.difference:+.2f}"
        agreement = "–" if c.agreement is None else f"±{c.agreement:g}"
        lines.append(f"| {c.dataset} | {METRIC_LABELS[c.metric]} ({METRIC_UNITS[c.metric]}) | "
                     f"{c.ours:.2f} | {published} | {difference} | {agreement} | {c.verdict} |")
    lines += [f"\n{note}" for note in release.notes]
    return "\n".join(lines)
