"""The files a test leaves in a run directory and ``str-lightning compare`` reads back.

The record of a test lies in ``results/`` (:func:`write_test_record`, which the results callback
calls at test end; :func:`read_test_record`): ``test_results.csv`` (the metrics per dataset,
then :data:`RECORD_COLUMNS`: the frames, the checkpoint the test loaded, its global step and
weights hash, the seed) and ``test_config.yaml`` (the test's full configuration). The metrics can
also be read, to cross-check that file, from the CSV logger's newest ``csv/version_N/metrics.csv``
with test metrics or from the newest offline W&B run with test metrics in its summary
(:func:`read_metrics`, :data:`SOURCES`). Metrics are ``{dataset: {metric: value}}``
(:data:`Results`), in the paper's order (:func:`ordered_metrics`). A missing or incomplete record
raises :class:`CompareError`, naming the file and the test to run.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from str_lightning.evaluation.metrics import METRIC_LABELS
from str_lightning.reporting.wandb_files import offline_run_files, read_run
from str_lightning.runs.directory import RunDirectory

SOURCES = ("auto", "results", "csv", "wandb")
"""Where :func:`read_metrics` reads a run's test metrics (``auto``: the first that has any)."""
RECORD_COLUMNS = ("frames", "global_step", "checkpoint", "weights_sha256", "seed")
"""The columns of ``results/test_results.csv`` after the metrics (see :func:`write_test_record`)."""
RETEST = "str-lightning test --config <its config> --seed_everything {seed} --ckpt_path best"
Results = dict[str, dict[str, float]]  # dataset -> metric -> value


class CompareError(ValueError):
    """A run directory without readable test results, or an unusable request."""


def write_results_csv(path: str | Path, results: Results, extra: Mapping[str, Any] | None = None) -> Path:
    """Write one row per dataset: ``dataset``, the metrics (in :data:`METRIC_LABELS` order, others
    after them alphabetically, ``frames`` last), then the ``extra`` columns (the same value on
    every row)."""
    names = {m for values in results.values() for m in values}
    metrics = ordered_metrics(names - {"frames"}) + ["frames"] * ("frames" in names)
    extra = dict(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", *metrics, *extra])
        for dataset, values in results.items():
            writer.writerow([dataset, *(values.get(m, "") for m in metrics), *extra.values()])
    return path


def write_test_record(run_dir: str | Path, results: Results, config: Mapping[str, Any] | str, *,
                      global_step: int, checkpoint: str, weights_sha256: str, seed: int | str) -> RunDirectory:
    """Write the record of a test that ``compare`` reads, in ``run_dir/results/``:

    * ``test_results.csv``: one row per dataset, its metrics and ``frames`` (both in ``results``),
      then ``global_step``, ``checkpoint`` (the absolute path of the checkpoint the test loaded,
      ``""`` for none), ``weights_sha256`` (a hash of the tested model's ``state_dict``) and
      ``seed`` (:data:`RECORD_COLUMNS`);
    * ``test_config.yaml``: the test's full configuration, as the CLI saves ``cli_config.yaml``
      (YAML text, or a mapping dumped as YAML).

    The previous results file goes first and each file appears whole (written beside, then
    renamed), so a test that dies half-way leaves no results paired with another test's config.
    """
    run = RunDirectory(run_dir)
    run.results_csv.unlink(missing_ok=True)
    text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
    _replace(run.results_config, lambda path: path.write_text(text))
    extra = {"global_step": global_step, "checkpoint": checkpoint, "weights_sha256": weights_sha256,
             "seed": seed}
    _replace(run.results_csv, lambda path: write_results_csv(path, results, extra))
    return run


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through ``write`` into a hidden file beside it, then rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.parent.mkdir(parents=True, exist_ok=True)
    write(temporary)
    os.replace(temporary, path)


def read_results_csv(path: str | Path, extra_columns: Sequence[str] = RECORD_COLUMNS) -> Results:
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


def read_metrics(run_dir: Path, source: str = "auto") -> tuple[Results, str]:
    """The test metrics of ``run_dir`` from ``source`` (``auto``: the first of ``results``,
    ``csv``, ``wandb`` that has any) and the source they came from. Raises
    :class:`CompareError` naming the files looked at when none has."""
    if source not in SOURCES:
        raise CompareError(f"unknown results source {source!r}; expected one of {SOURCES}")
    results_csv = RunDirectory(run_dir).results_csv
    readers = {
        "results": lambda: read_results_csv(results_csv) if results_csv.is_file() else {},
        "csv": lambda: read_csv_logger(run_dir),
        "wandb": lambda: read_wandb_offline(run_dir),
    }
    for kind in readers if source == "auto" else (source,):
        results = readers[kind]()
        if results:
            return results, kind
    raise CompareError(
        f"{run_dir}: no test metrics found (looked at {results_csv.relative_to(run_dir)}, "
        "csv/version_*/metrics.csv and wandb/offline-run-*; run `str-lightning test` on it first)")


@dataclass(frozen=True)
class RecordedTest:
    """What a run's last test recorded: its configuration and the checkpoint it loaded (``""``:
    none)."""

    config: dict[str, Any]
    checkpoint: str


def read_test_record(run_dir: Path) -> RecordedTest:
    """The record :func:`write_test_record` left in ``run_dir``. Raises :class:`CompareError`,
    saying how to make one, when it is missing or incomplete."""
    run = RunDirectory(run_dir)
    retest = retest_command(run.seed)
    for path in (run.results_config, run.results_csv):
        if not path.is_file():
            raise CompareError(
                f"{run_dir}: no record of its test ({path.relative_to(run_dir)} is missing); "
                f"compare takes only runs whose test recorded what it tested: run `{retest}`")
    with run.results_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    missing = [c for c in RECORD_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise CompareError(f"{run.results_csv}: expected the columns {list(RECORD_COLUMNS)} after "
                           f"the metrics, missing {missing} (written before tests recorded them); "
                           f"run `{retest}`")
    config = yaml.safe_load(run.results_config.read_text())
    if not isinstance(config, Mapping):
        raise CompareError(f"{run.results_config}: expected a YAML mapping (the test's "
                           f"configuration), got {type(config).__name__}")
    return RecordedTest(dict(config), rows[0]["checkpoint"] if rows else "")


def retest_command(seed: int | None) -> str:
    """The test command that records what a run's test tested, for seed ``seed`` (``N``: unknown)."""
    return RETEST.format(seed="N" if seed is None else seed)
