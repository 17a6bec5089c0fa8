"""One run's test results and the seeds of an experiment, as ``str-lightning compare`` takes them.

A run counts only with the record its last test left
(:func:`~str_lightning.reporting.results_files.read_test_record`). The run's configuration, seed
and encoder switches come from that record, never from a later command's ``cli_config.yaml``.
:func:`load_run` refuses a run, naming its directory, when its test loaded a checkpoint that its
own ``fit`` did not write (one outside the run directory), or none at all while the
configuration names no released or SPIN weights (:func:`check_own_checkpoint`).

A :class:`RunGroup` is the runs of one experiment, one per seed (a table row); an experiment
directory's runs are its ``seed<N>`` run directories (:meth:`RunDirectory.seeds_of`). The seeds
of a group must be one configuration: the same :data:`CONFIGURATION_KEYS` (model, data and
training budget), else :func:`load_groups` raises :class:`CompareError` naming the first key that
differs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from str_lightning.reporting.results_files import (
    CompareError,
    RecordedTest,
    Results,
    read_metrics,
    read_test_record,
    retest_command,
)
from str_lightning.runs.directory import RunDirectory

CONFIGURATION_KEYS = ("model", "data", "trainer.max_epochs", "trainer.max_steps", "trainer.precision",
                      "trainer.accumulate_grad_batches", "trainer.gradient_clip_val")
SEED_KEYS = ("data.seed", "model.init_args.init_seed")
"""Settings that are the run's seed when unset (None) or equal to ``seed_everything``."""
PRETRAINED_KEYS = ("model.init_args.released_checkpoint", "model.init_args.spin_checkpoint")
"""Settings that give a model trained weights without a checkpoint of its own."""


# ---------------------------------------------------------------------- checks of the record
def check_own_checkpoint(run_dir: Path, record: RecordedTest, seed: int | None) -> None:
    """Raise :class:`CompareError` unless the recorded test scored weights this run trained: a
    checkpoint inside the run directory (where it lies now, or where the test config says the
    test ran: a run directory moved since keeps its checkpoints' old paths), or no checkpoint
    while the config initialises the model from released or SPIN weights."""
    retest = retest_command(seed)
    if not record.checkpoint:
        if any(_lookup(record.config, key) for key in PRETRAINED_KEYS):
            return
        raise CompareError(
            f"{run_dir}: its test loaded no checkpoint and the config names no "
            f"{' or '.join(PRETRAINED_KEYS)}, so it scored untrained weights; run `{retest}`")
    homes = [RunDirectory(Path(run_dir).resolve()), _tested_in(record.config, seed)]
    if not any(home and _lies_in(Path(record.checkpoint), home) for home in homes):
        raise CompareError(
            f"{run_dir}: its test loaded {record.checkpoint}, which this run's own fit did not "
            f"write (it lies outside the run directory); run `{retest}`, or leave this seed out")


def _tested_in(config: Mapping[str, Any], seed: int | None) -> RunDirectory | None:
    """The run directory a test config names (None when its ``run`` section or seed is missing)."""
    run = config.get("run")
    names = [run.get(key) for key in ("root", "project", "experiment")] if isinstance(run, Mapping) else []
    if seed is None or len(names) != 3 or not all(isinstance(name, str) for name in names):
        return None
    return RunDirectory.of(run, seed)


def _lies_in(path: Path, run: RunDirectory) -> bool:
    """Whether ``path`` lies in ``run``; a relative run directory (a relative ``run.root``)
    counts wherever it was started from."""
    if run.path.is_absolute():
        return run.contains(path.resolve()) or run.contains(path)
    tail = run.path.parts
    return any(parent.parts[-len(tail):] == tail for parent in path.parents)


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


def configuration(config: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """What makes two runs the same configuration: the :data:`CONFIGURATION_KEYS` of their test
    config (model, data and training budget; not the seed, run names, loggers or devices). The
    :data:`SEED_KEYS` are the seed too when unset (None: "the run's seed") or equal to ``seed``;
    a fixed other value is part of the configuration."""
    values = copy.deepcopy({key: _lookup(config, key) for key in CONFIGURATION_KEYS})
    for dotted in SEED_KEYS:
        *parents, key = dotted.split(".")
        parent = _lookup(values, ".".join(parents))
        if isinstance(parent, dict) and parent.get(key) in (None, seed):
            parent.pop(key, None)
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
    return RunDirectory(run_dir).seed


def load_run(run_dir: str | Path, name: str | None = None, source: str = "auto") -> RunResults:
    """The test results of ``run_dir`` (:func:`read_metrics`) with the configuration, seed and
    switches of its test record, after checking that the test scored the run's own weights
    (:func:`check_own_checkpoint`). Raises :class:`CompareError` naming the run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CompareError(f"run directory {run_dir} does not exist")
    record = read_test_record(run_dir)
    results, kind = read_metrics(run_dir, source)
    seed = run_seed(run_dir, record.config)
    check_own_checkpoint(run_dir, record, seed)
    return RunResults(name or run_dir.name, run_dir, kind, in_config_order(results, record.config),
                      encoder_switches(record.config), seed, configuration(record.config, seed))


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
        return list(self.values_by_seed(column).values())

    def values_by_seed(self, column: tuple[str, str]) -> dict[int | None, float]:
        """The column's value of every run that has it, by the run's seed (seeds are unique
        within a group: :func:`check_one_configuration`)."""
        dataset, metric = column
        return {r.seed: v for r in self.runs if (v := r.results.get(dataset, {}).get(metric)) is not None}


def experiment_of(path: Path) -> tuple[Path, list[Path]]:
    """``(experiment directory, its run directories)`` of a ``RUN_DIR`` argument: an experiment
    directory means all its seeds, a ``seed<N>`` directory that seed of its parent, any other
    directory a run of its own."""
    if seeds := RunDirectory.seeds_of(path):
        return path, [run.path for run in seeds]
    if RunDirectory(path).seed is not None:
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
    if None in group.seeds and len(group.runs) > 1:
        unknown = next(r.run_dir for r in group.runs if r.seed is None)
        raise CompareError(f"{group.name}: {unknown} records no seed_everything in its test "
                           "config, so its seed cannot be told apart from the others'")
    if len(group.seeds) != len(set(group.seeds)):
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
