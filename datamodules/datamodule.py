"""``ShardDataModule``: training windows and exact-once evaluation from clip shards (docs/data.md).

Batch layouts are documented in docs/data.md. The trainer should run with
``use_distributed_sampler: false`` (nothing here needs Lightning's sampler); the loaders stay
correct with it on, since the training loader is not a DataLoader and the evaluation loaders
wrap IterableDatasets, which Lightning leaves alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from datamodules.loading import (
    GROUPS,
    WINDOWS,
    EpochLoader,
    TrainDataset,
    TrainStreamConfig,
    TrainWindows,
    eval_loader,
    manifest_short_clips,
    rank_batch_split,
    window_count,
)
from datamodules.schema import DataError, Manifest, read_manifest, verify_checksums
from datamodules.synthetic.card import is_synthetic_benchmark

STAGE_KEYS = {  # what each trainer stage reads
    "fit": ("train_datasets", "val_datasets", "motion_dataset"),
    "validate": ("val_datasets",),
    "test": ("test_datasets",),
    "predict": ("predict_datasets",),
}
ROLES = ("train", "val", "test", "predict")  # what data.verify_checksums names

log = logging.getLogger(__name__)


class ShardDataModule(L.LightningDataModule):
    """Clip shards in, batches out.

    Args:
        train_datasets: training split directories with mixing ``weight`` and ``group``
            ("2d": 2D-only, "3d": with 3D or SMPL targets). ``weight: windows`` weighs a dataset
            by its number of training windows (proportional mixing, as TCMR and VIBE do);
            numbers and ``windows`` cannot be mixed within a group.
        val_datasets / test_datasets: evaluation split directories by name; one loader each, in
            this order (``val_names``/``test_names`` give the names by dataloader index).
        seq_len: window length T of training windows.
        stride: distance between window starts within a clip (plus a random phase per clip).
        batch_size: global training batch (all ranks together); must divide by the world size.
        ratio_2d: share of 2D-only windows in the global batch (``int(batch_size * ratio_2d)``).
        steps_per_epoch: training batches per epoch, on every rank.
        num_workers: DataLoader workers per rank (training and each evaluation loader).
        clip_pool: clips whose windows each (dataset, worker) stream interleaves: every window
            comes from a random clip of the pool, so a batch spans up to that many clips (a
            global shuffle's variety when it is well above the batch size). The pool's clips
            are held in memory; 1 gives the windows of one clip after another.
        seed: base seed of the training stream (per rank, worker and epoch it is derived);
            None: the seed torch was last seeded with (``seed_everything``, the run's seed).
        skip_short_clips: take training windows only from clips of at least ``seq_len``
            frames, as TCMR does (its windows lie inside a video): shorter clips are skipped and
            counted, and the loader reports per split how many clips and frames that loses.
            False: a short training clip stops the run with an error naming it. Evaluation
            always covers every frame.
        ignore_smpl: dataset names (a manifest's ``dataset``, e.g. ``h36m``) of training splits
            whose SMPL pose and shape are never supervised, even where their shards hold them
            (TCMR's ``repr_table4_3dpw_model`` and the STR paper train Human3.6M without SMPL).
        pin_memory: put every batch (training, evaluation, prediction, real motion) in pinned
            host memory, so that its copy to the GPU runs while the GPU computes (Lightning copies
            with ``non_blocking``); None (default): when the trainer runs on a GPU.
        motion_dataset: a split with SMPL poses (kind "motion", e.g. AMASS, or any clip split
            with SMPL) whose non-overlapping ``seq_len`` windows are the real motions of the
            VIBE-like discriminator (``motion_dataloader``).
        predict_datasets: splits to run ``str-lightning predict`` on, by name.
        root: the directory every relative split path above is read from (absolute paths stay
            as they are); None: the working directory. One key moves an experiment's data.
        verify_checksums: the splits whose shards are checked against the sha256 their
            manifest lists before they are read: any of "train" (with the motion split), "val",
            "test", "predict"; a changed shard stops the run with a ``ShardError``. Default:
            the test splits (a small fraction of a test's time, docs/benchmarks.md).
    """

    def __init__(
        self,
        train_datasets: list[TrainDataset] | None = None,
        val_datasets: dict[str, str] | None = None,
        test_datasets: dict[str, str] | None = None,
        seq_len: int = 16,
        stride: int = 1,
        batch_size: int = 32,
        ratio_2d: float = 0.6,
        steps_per_epoch: int = 500,
        num_workers: int = 2,
        clip_pool: int = 64,
        seed: int | None = None,
        skip_short_clips: bool = True,
        ignore_smpl: Sequence[str] = (),
        pin_memory: bool | None = None,
        motion_dataset: str | None = None,
        predict_datasets: dict[str, str] | None = None,
        root: str | None = None,
        verify_checksums: Sequence[Literal["train", "val", "test", "predict"]] = ("test",),
    ) -> None:
        super().__init__()
        if seq_len < 1 or stride < 1 or steps_per_epoch < 1 or batch_size < 1 or num_workers < 0:
            raise ValueError("ShardDataModule: seq_len, stride, steps_per_epoch, batch_size >= 1 "
                             "and num_workers >= 0 expected")
        self.verify_checksums = set(verify_checksums)
        if not self.verify_checksums <= set(ROLES):
            raise DataError(f"data.verify_checksums: expected a list of {ROLES}, got "
                            f"{sorted(self.verify_checksums)}")

        def at_root(path: str) -> str:
            return str(Path(root) / path) if root else path

        datasets = [d if isinstance(d, TrainDataset) else TrainDataset(**d)
                    for d in train_datasets or []]
        self.train_datasets = [replace(d, path=at_root(d.path)) for d in datasets]
        _check_train_datasets(self.train_datasets)
        self.val_datasets = {name: at_root(path) for name, path in (val_datasets or {}).items()}
        self.test_datasets = {name: at_root(path) for name, path in (test_datasets or {}).items()}
        self.predict_datasets = {name: at_root(path)
                                 for name, path in (predict_datasets or {}).items()}
        self.motion_dataset = at_root(motion_dataset) if motion_dataset else None
        if clip_pool < 1:
            raise ValueError(f"ShardDataModule: clip_pool must be >= 1, got {clip_pool}")
        seed = torch.initial_seed() if seed is None else seed
        self.stream_config = TrainStreamConfig(seq_len, stride, steps_per_epoch, clip_pool, seed,
                                               skip_short_clips, tuple(ignore_smpl))
        self.batch_size, self.ratio_2d = batch_size, ratio_2d
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self._train_loader: EpochLoader | None = None
        self._resume_state: dict[str, Any] = {}

    # ------------------------------------------------------------------ properties

    @property
    def val_names(self) -> list[str]:
        return list(self.val_datasets)

    @property
    def test_names(self) -> list[str]:
        return list(self.test_datasets)

    def configured_paths(self, stage: str | None = None) -> dict[str, str]:
        """The configured split directories by config key (``data.test_datasets.synthetic``):
        all of them, or those a trainer ``stage`` reads (:data:`STAGE_KEYS`)."""
        groups = {
            "train_datasets": {f"data.train_datasets[{i}]": d.path
                               for i, d in enumerate(self.train_datasets)},
            **{key: {f"data.{key}.{name}": path for name, path in getattr(self, key).items()}
               for key in ("val_datasets", "test_datasets", "predict_datasets")},
            "motion_dataset": {"data.motion_dataset": self.motion_dataset} if self.motion_dataset else {},
        }
        return {key: path for group in (STAGE_KEYS[stage] if stage else groups)
                for key, path in groups[group].items()}

    def check_directories(self, stage: str | None = None) -> None:
        """Raise :class:`DataError` naming every split directory of ``stage`` (default: every
        configured one) that does not exist, with the two ways out: generate the synthetic
        benchmark, or point the config elsewhere."""
        missing = {key: path for key, path in self.configured_paths(stage).items()
                   if not Path(path).is_dir()}
        if missing:
            listed = "\n".join(f"  {key}: {path}" for key, path in missing.items())
            raise DataError(
                f"data directories do not exist (relative paths are read from {Path.cwd()}):\n"
                f"{listed}\nGenerate the synthetic benchmark with `str-lightning synth --out "
                "data/synthetic`, or point the config at your data: --data.root DIR (what the "
                "split paths are relative to), --data FILE.yaml (see configs/data/) or an "
                "override such as --data.test_datasets '{NAME: /path/to/split}'.")

    def feature_dim_for(self, stage: str) -> int:
        """The feature dimension D of the splits ``stage`` reads (from their manifests), after
        checking that those directories exist and agree on D."""
        self.check_directories(stage)
        paths = self.feature_paths(stage)
        if not paths:
            keys = [f"data.{key}" for key in STAGE_KEYS[stage] if key != "motion_dataset"]
            raise DataError(f"{stage} reads no data: set {' or '.join(keys)}")
        dims = {key: read_manifest(path).feature_dim for key, path in paths.items()}
        if len(set(dims.values())) != 1:
            listed = ", ".join(f"{key} ({paths[key]}): {dim}" for key, dim in dims.items())
            raise DataError(f"the {stage} data must have one feature size, got {listed}")
        return next(iter(dims.values()))

    def feature_paths(self, stage: str) -> dict[str, str]:
        """The clip split directories a trainer ``stage`` reads, by config key (all but the
        motion split, whose windows hold poses only)."""
        return {key: path for key, path in self.configured_paths(stage).items()
                if key != "data.motion_dataset"}

    def stage_splits(self, stage: str) -> list[str]:
        """The clip split directories a trainer ``stage`` reads (:meth:`feature_paths`)."""
        return list(self.feature_paths(stage).values())

    def real_data_splits(self, stage: str) -> list[str]:
        """The splits of ``stage`` that are not the synthetic benchmark (see
        ``is_synthetic_benchmark``): data whose targets were not made with the mannequin."""
        return [path for path in self.stage_splits(stage) if not is_synthetic_benchmark(path)]

    # ------------------------------------------------------------------ loaders

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)

    def train_loader_for(self, rank: int, world_size: int) -> EpochLoader:
        """The training loader of ``rank`` among ``world_size`` processes (the one whose
        progress ``state_dict`` reports from then on)."""
        if not self.train_datasets:
            raise DataError("no train_datasets configured")
        manifests = [self._train_manifest(d) for d in self.train_datasets]
        self._check_ignore_smpl(manifests)
        if rank == 0:
            self._report_short_clips(manifests)
        datasets = [self._resolved_weight(d, m) for d, m in zip(self.train_datasets, manifests)]
        groups = sorted({d.group for d in datasets})
        counts = rank_batch_split(self.batch_size, self.ratio_2d, world_size, rank, groups)
        stream = TrainWindows(manifests, datasets, counts, self.stream_config, rank, world_size)
        loader = EpochLoader(stream, self.num_workers, self._pins_memory())
        loader.load_state_dict(self._resume_state)
        self._train_loader = loader
        return loader

    def _manifest(self, path: str, role: str) -> Manifest:
        """The manifest of a split read in ``role``, after its checksums when asked."""
        manifest = read_manifest(path)
        if role in self.verify_checksums:
            verify_checksums(manifest)
        return manifest

    def _train_manifest(self, dataset: TrainDataset) -> Manifest:
        manifest = self._manifest(dataset.path, "train")
        if manifest.kind != "clip" or not manifest.feature_dim:
            raise DataError(f"train dataset {dataset.path}: expected kind 'clip' with features, "
                            f"got kind {manifest.kind!r}")
        return manifest

    def _check_ignore_smpl(self, manifests: Sequence[Manifest]) -> None:
        unknown = sorted(set(self.stream_config.ignore_smpl) - {m.dataset for m in manifests})
        if unknown:
            raise DataError(f"data.ignore_smpl names {unknown}, which no training split holds "
                            f"(their datasets: {sorted({m.dataset for m in manifests})})")

    def _report_short_clips(self, manifests: Sequence[Manifest]) -> None:
        """Log, per training split that has any, what clips shorter than ``seq_len`` cost."""
        if not self.stream_config.skip_short_clips:
            return  # the first one read stops the run
        for dataset, manifest in zip(self.train_datasets, manifests):
            short = manifest_short_clips(manifest, self.stream_config.seq_len)
            if short.clips:
                log.warning("%s: %s", dataset.path, short)

    def _resolved_weight(self, dataset: TrainDataset, manifest: Manifest) -> TrainDataset:
        if dataset.weight != WINDOWS:
            return dataset
        windows = window_count(manifest, self.stream_config.seq_len, self.stream_config.stride)
        if not windows:
            raise DataError(f"train dataset {dataset.path}: weight 'windows' but no clip has "
                            f"seq_len={self.stream_config.seq_len} frames")
        return replace(dataset, weight=float(windows))

    def eval_loaders_for(self, datasets: Mapping[str, str], rank: int, world_size: int,
                         role: str = "val") -> list[DataLoader]:
        """One exact-once loader per named evaluation dataset for ``rank`` (``role``: which
        entry of ``verify_checksums`` applies)."""
        return [eval_loader(name, self._manifest(path, role), rank, world_size, self.num_workers,
                            self._pins_memory())
                for name, path in datasets.items()]

    def _pins_memory(self) -> bool:
        """``pin_memory``, or whether the trainer runs on a GPU when it is None."""
        if self.pin_memory is not None:
            return self.pin_memory
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> EpochLoader:
        return self.train_loader_for(*self._rank_and_world())

    def val_dataloader(self) -> list[DataLoader]:
        return self.eval_loaders_for(self.val_datasets, *self._rank_and_world(), role="val")

    def test_dataloader(self) -> list[DataLoader]:
        return self.eval_loaders_for(self.test_datasets, *self._rank_and_world(), role="test")

    def predict_dataloader(self) -> list[DataLoader]:
        if not self.predict_datasets:
            raise DataError("nothing to predict: set data.predict_datasets to {name: split "
                            "directory}, e.g. --data.predict_datasets '{mine: data/shards/mine}'")
        return self.eval_loaders_for(self.predict_datasets, *self._rank_and_world(),
                                     role="predict")

    def motion_dataloader(self) -> EpochLoader:
        """Batches ``{"pose": (B, T, 72), "valid": (B, T)}`` of real motion windows for this
        rank (B = this rank's share of ``batch_size``), ``steps_per_epoch`` per pass."""
        if not self.motion_dataset:
            raise DataError("the VIBE-like model needs real motion windows: set "
                            "data.motion_dataset to a split with SMPL poses (e.g. AMASS shards)")
        rank, world_size = self._rank_and_world()
        dataset = TrainDataset(path=self.motion_dataset, weight=1.0, group="3d")
        config = replace(self.stream_config, stride=self.stream_config.seq_len)
        counts = {"2d": 0, "3d": self.batch_size // world_size}
        stream = TrainWindows([self._manifest(self.motion_dataset, "train")], [dataset], counts,
                              config, rank, world_size)
        return EpochLoader(stream, num_workers=0, pin_memory=self._pins_memory())

    # ------------------------------------------------------------------ resume bookkeeping

    def state_dict(self) -> dict[str, Any]:
        """The training loader's state (:meth:`EpochLoader.state_dict`: where its stream stands,
        batches consumed, skipped clips), the samples consumed on this rank, and the seed."""
        loader = self._train_loader
        state = dict(self._resume_state)
        if loader is not None:
            per_rank_batch = sum(loader.dataset.counts.values())
            state.update(loader.state_dict(),
                         samples_consumed=loader.batches_consumed * per_rank_batch)
        return {**state, "seed": self.stream_config.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_state = dict(state_dict)
        if self._train_loader is not None:
            self._train_loader.load_state_dict(state_dict)


def _check_train_datasets(datasets: list[TrainDataset]) -> None:
    """Groups are "2d"/"3d"; weights are numbers > 0 or "windows", one kind per group."""
    for dataset in datasets:
        by_windows = dataset.weight == WINDOWS
        if dataset.group not in GROUPS or not (by_windows or (
                isinstance(dataset.weight, (int, float)) and dataset.weight > 0)):
            raise ValueError(f"train dataset {dataset.path}: expected group in {GROUPS} and "
                             f"weight > 0 or {WINDOWS!r}, got {dataset.group!r}, "
                             f"{dataset.weight!r}")
    for group in GROUPS:
        kinds = {d.path: d.weight for d in datasets if d.group == group}
        if len({weight == WINDOWS for weight in kinds.values()}) > 1:
            raise ValueError(f"train datasets of group {group!r}: weights must be all numbers or "
                             f"all {WINDOWS!r} (a number and a window count are not comparable), "
                             f"got {kinds}")
