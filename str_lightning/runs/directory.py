"""The layout of a run directory, in one place.

A run directory ``<run.root>/<run.project>/<run.experiment>/seed<N>`` (:meth:`RunDirectory.of`;
an experiment directory's are :meth:`RunDirectory.seeds_of`) holds::

    cli_config.yaml            the resolved config of the latest start (any sub-command)
    hpc_ckpt_<n>.ckpt          preemption (SIGUSR1) and SIGTERM checkpoints
    checkpoints/*.ckpt         ModelCheckpoint's periodic and best checkpoints
    checkpoints/last.ckpt      a symbolic link to the checkpoint written last
    results/test_results.csv   the per-dataset test results of the latest test, with the
                               checkpoint, its global step and a hash of the tested weights
    results/test_config.yaml   the configuration of that test
    predictions/<dataset>/     one file per sequence written by ``predict``
    quickstart.md              the results table of ``str-lightning quickstart``
    csv/version_<n>/           CSVLogger output (when a config logs there)
    wandb/offline-run-*        offline W&B runs (when a config logs there)

"Newest" means the highest stored ``global_step`` (file times are unreliable on shared file
systems and across requeues); files a checkpoint write leaves behind when killed (dot-names ending
in ``.tmp``) and symbolic links are never candidates.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from str_lightning.runs.checkpoints import (
    TEMPORARY_SUFFIX,
    UNREADABLE_CHECKPOINT_ERRORS,
    fsync_directory,
    point_link_at,
    read_checkpoint_meta,
)

log = logging.getLogger(__name__)

AUTO = "auto"
BEST = "best"
NONE = "none"  # evaluate without a checkpoint, on purpose
HPC_CHECKPOINT = re.compile(r"^hpc_ckpt_(\d+)\.ckpt$")


class RunDirectory:
    """One run directory: where each file lives, and which checkpoint is newest or best.

    Args:
        path: the run directory (it need not exist yet).
    """

    CONFIG_FILENAME = "cli_config.yaml"
    LAST_CHECKPOINT = "last.ckpt"

    SEED_PREFIX = "seed"
    SEED_NAME = re.compile(rf"{SEED_PREFIX}(\d+)")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def of(cls, run: Mapping[str, Any], seed: int) -> RunDirectory:
        """The run directory of a config's ``run`` section (root, project, experiment) and seed."""
        return cls(Path(run["root"]) / run["project"] / run["experiment"] / f"{cls.SEED_PREFIX}{seed}")

    @classmethod
    def seeds_of(cls, experiment: str | Path) -> list[RunDirectory]:
        """The ``seed<N>`` run directories of an experiment directory
        ``<run.root>/<run.project>/<run.experiment>``, by seed ([] when it has none)."""
        experiment = Path(experiment)
        if not experiment.is_dir():
            return []
        found = [run for path in experiment.iterdir()
                 if path.is_dir() and (run := cls(path)).seed is not None]
        return sorted(found, key=lambda run: (run.seed, run.path))

    @property
    def seed(self) -> int | None:
        """The ``N`` of a ``seed<N>`` run directory (:meth:`of`); None for any other name."""
        match = self.SEED_NAME.fullmatch(self.path.name)
        return int(match.group(1)) if match else None

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDirectory | None:
        """The run directory a checkpoint file lies in (``hpc_ckpt_<n>.ckpt`` at its top,
        ``checkpoints/**``), recognised by its saved config; None for a file elsewhere."""
        path = Path(os.path.abspath(checkpoint))
        below_checkpoints = [p.parent for p in path.parents if p.name == "checkpoints"][:1]
        for candidate in [path.parent, *below_checkpoints]:
            if (candidate / cls.CONFIG_FILENAME).is_file():
                return cls(candidate)
        return None

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # ------------------------------------------------------------------ where things live
    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG_FILENAME

    @property
    def checkpoint_dir(self) -> Path:
        """ModelCheckpoint's ``dirpath``."""
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / self.LAST_CHECKPOINT

    @property
    def results_csv(self) -> Path:
        """The per-dataset results of the latest test (``compare``'s record of it)."""
        return self.path / "results" / "test_results.csv"

    @property
    def results_config(self) -> Path:
        """The configuration of the test whose results ``results_csv`` holds."""
        return self.path / "results" / "test_config.yaml"

    @property
    def predictions_dir(self) -> Path:
        """Where ``predict`` writes its files (``<dataset>/<sequence>.npz``)."""
        return self.path / "predictions"

    @property
    def quickstart_table(self) -> Path:
        return self.path / "quickstart.md"

    @property
    def wandb_dir(self) -> Path:
        return self.path / "wandb"

    def csv_metrics_files(self) -> list[Path]:
        """The CSVLogger's ``csv/version_<n>/metrics.csv`` files, oldest version first."""
        return sorted(self.path.glob("csv/version_*/metrics.csv"),
                      key=lambda p: int(p.parent.name.removeprefix("version_") or 0))

    def hpc_checkpoint(self, number: int) -> Path:
        return self.path / f"hpc_ckpt_{number}.ckpt"

    def hpc_checkpoints(self) -> dict[int, Path]:
        """The ``hpc_ckpt_<n>.ckpt`` files by ``n``."""
        found = {}
        for path in self.path.glob("hpc_ckpt_*.ckpt"):
            number = hpc_checkpoint_number(path)
            if number is not None:
                found[number] = path
        return found

    def next_hpc_checkpoint(self) -> Path:
        return self.hpc_checkpoint(max(self.hpc_checkpoints(), default=0) + 1)

    # ------------------------------------------------------------------ checkpoints
    def checkpoints(self) -> list[Path]:
        """Every checkpoint file of the run (``hpc_ckpt_*.ckpt`` and ``checkpoints/**/*.ckpt``),
        without symbolic links such as ``last.ckpt``."""
        found = list(self.path.glob("hpc_ckpt_*.ckpt")) + list(self.checkpoint_dir.rglob("*.ckpt"))
        return sorted(p for p in found if p.is_file() and not p.is_symlink())

    def leftover_temporaries(self) -> list[Path]:
        """Files that a killed checkpoint write left behind (``.<name>.<random>.tmp``)."""
        found = [*self.path.glob(f".*{TEMPORARY_SUFFIX}"),
                 *self.checkpoint_dir.rglob(f".*{TEMPORARY_SUFFIX}")]
        return sorted(p for p in found if p.is_file() or p.is_symlink())

    def newest_checkpoint(self, looking_for: str = f"--ckpt_path {AUTO}") -> Path | None:
        """The readable checkpoint with the highest ``global_step`` (ties: an hpc checkpoint, then
        the latest file name), or None when the run has none. Unreadable files are skipped with a
        warning that starts with ``looking_for`` (what the lookup is for): a run never resumes
        from them."""
        ranked = []
        for path in self.checkpoints():
            try:
                step = read_checkpoint_meta(path)["global_step"]
            except UNREADABLE_CHECKPOINT_ERRORS as error:
                warnings.warn(f"{looking_for}: skipping {path}, it cannot be read safely "
                              f"({type(error).__name__}: {error})", stacklevel=2)
                continue
            ranked.append((step, path.name.startswith("hpc_ckpt_"), path.name, path))
        return max(ranked)[-1] if ranked else None

    def best_checkpoint(self) -> Path:
        """The best checkpoint recorded by the run's ModelCheckpoint (read from its newest
        checkpoint's callback state). Raises FileNotFoundError with what to do otherwise."""
        newest = self.newest_checkpoint(looking_for=f"--ckpt_path {BEST}")
        if newest is None:
            raise FileNotFoundError(f"--ckpt_path best: no checkpoint in {self.path}; train first "
                                    "(str-lightning fit) or pass a checkpoint file")
        for key, state in read_checkpoint_meta(newest)["callbacks"].items():
            if key.startswith("ModelCheckpoint") and state.get("best_model_path"):
                best = Path(state["best_model_path"])
                if best.is_file():
                    return best
        raise FileNotFoundError(f"--ckpt_path best: {newest} records no existing best checkpoint "
                                "(is a ModelCheckpoint with a monitor configured?)")

    def resolve_ckpt_path(self, ckpt_path: str | None) -> str | None:
        """``auto`` -> the newest checkpoint or None (fresh start); ``best`` -> the best one;
        ``none`` -> None; anything else unchanged."""
        if ckpt_path == NONE:
            return None
        if ckpt_path == AUTO:
            newest = self.newest_checkpoint()
            return str(newest) if newest else None
        if ckpt_path == BEST:
            return str(self.best_checkpoint())
        return ckpt_path

    def contains(self, path: str | Path) -> bool:
        """Whether ``path`` lies inside this run directory."""
        return Path(os.path.abspath(self.path)) in Path(os.path.abspath(path)).parents

    def point_last_at(self, checkpoint: str | Path) -> None:
        """Make ``checkpoints/last.ckpt`` a link to ``checkpoint``, atomically."""
        point_link_at(self.last_checkpoint, checkpoint)

    # ------------------------------------------------------------------ starting over
    def archive(self) -> Path:
        """Move the whole run directory to a sibling ``<name>.old-<YYYYmmdd-HHMMSS>`` (a rename on
        the same file system: nothing is copied or deleted); returns the new path."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.old-{stamp}")
        suffix = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.old-{stamp}-{suffix}")
            suffix += 1
        os.rename(self.path, target)
        fsync_directory(self.path.parent)
        log.warning("moved the previous run %s to %s", self.path, target)
        return target


def hpc_checkpoint_number(path: str | Path) -> int | None:
    """``n`` of ``hpc_ckpt_<n>.ckpt``, None for any other file name."""
    match = HPC_CHECKPOINT.match(Path(path).name)
    return int(match.group(1)) if match else None

