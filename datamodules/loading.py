"""Readers behind ``ShardDataModule``: the training window stream and the exact-once eval plan.

Both take the process's rank and world size as arguments (the DataModule passes the trainer's
``global_rank``/``world_size``); neither asks ``torch.distributed`` or the environment, so the
split is the same under any worker start method. Worker id and count come from
``torch.utils.data.get_worker_info()`` inside the worker.

Workers are never forked from the training process (``worker_options``): a DDP rank runs Gloo
or NCCL threads, and a fork copies their locks in whatever state they are, which can hang the
child. They start from a forkserver and persist across epochs; everything they need (the
manifests, the stream's configuration, the epoch) reaches them explicitly, never as fork-copied
state.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import multiprocessing.forkserver
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from datamodules.schema import (
    ClipEntry,
    ClipError,
    DataError,
    Manifest,
    ShardEntry,
    check_clip_frames,
    decode_sample,
    read_clip,
    shard_samples,
)
from str_lightning.body.joints import (
    NUM_BETAS,
    NUM_POSE_PARAMS,
    NUM_SPIN_JOINTS,
    convert_joints,
    joint_names,
)
from str_lightning.runs.signals import preemption_signals_blocked, preemption_worker_init

TRAIN_JOINTS = "spin49"
GROUPS = ("2d", "3d")
WINDOWS = "windows"  # a weight: the split's number of training windows
WORKER_START_METHOD = "forkserver"


def worker_options(num_workers: int) -> dict[str, Any]:
    """DataLoader arguments for ``num_workers`` workers that are safe in a DDP rank.

    Workers start from a forkserver (a fresh, single-threaded process that has imported this
    module and torch once; never a fork of the calling process and its Gloo threads), persist
    across epochs, and ignore the preemption signals of the calling process; the server is
    started with them blocked, since SLURM signals every process of the job step. As with any such
    start method, each worker imports the main script (not ``python -m`` modules), so a script
    that builds these loaders must guard its entry point with ``if __name__ == "__main__":``.
    """
    if num_workers == 0:
        return {"num_workers": 0}
    context = multiprocessing.get_context(WORKER_START_METHOD)
    context.set_forkserver_preload([__name__])  # imported once by the server, when it starts
    with preemption_signals_blocked():  # the server (and its resource tracker) inherit the block
        multiprocessing.forkserver.ensure_running()
    return {"num_workers": num_workers, "multiprocessing_context": context,
            "persistent_workers": True, "worker_init_fn": preemption_worker_init()}


@atexit.register  # registered after multiprocessing's own exit handler, so it runs before it
def _kill_leftover_workers() -> None:
    """Kill the daemonic children (DataLoader workers) still alive at interpreter exit.

    multiprocessing's exit handler terminates them with SIGTERM and then joins them, but the
    workers ignore SIGTERM (so that a group-wide SIGTERM reaches only the training process):
    persistent workers still alive at exit would make that join wait forever. A worker holds
    nothing to save, so SIGKILL is what its termination would have been."""
    for child in multiprocessing.active_children():
        if child.daemon:
            child.kill()


@dataclass
class TrainDataset:
    """One training split directory, its mixing weight and its group (2D-only or 3D).

    ``weight`` is a positive number, or ``"windows"``: the split's number of training windows
    (``window_count``), which mixes a group's datasets in proportion to their sizes like one
    concatenated dataset (TCMR's and VIBE's mixing).
    """

    path: str
    weight: float | Literal["windows"] = 1.0
    group: Literal["2d", "3d"] = "3d"


def window_count(manifest: Manifest, seq_len: int, stride: int) -> int:
    """Training windows of ``seq_len`` frames at ``stride`` in a split: per clip of L >= seq_len
    frames, ``(L - seq_len) // stride + 1`` (shorter clips have none)."""
    return sum((clip.frames - seq_len) // stride + 1 for shard in manifest.shards
               for clip in shard.clips if clip.frames >= seq_len)


@dataclass(frozen=True)
class ShortClips:
    """The clips of a split shorter than ``seq_len``: no training window is cut from them
    (TCMR's rule; evaluation still covers every frame)."""

    seq_len: int
    clips: int
    frames: int
    total_clips: int
    total_frames: int

    def __str__(self) -> str:
        return (f"{self.clips} of {self.total_clips} clips ({self.frames} of {self.total_frames} "
                f"frames) shorter than seq_len={self.seq_len}: no training windows from them")


def short_clips(lengths: Sequence[int], seq_len: int) -> ShortClips:
    """What a training stream of ``seq_len`` windows loses from clips of these ``lengths``."""
    short = [n for n in lengths if n < seq_len]
    return ShortClips(seq_len, len(short), sum(short), len(lengths), sum(lengths))


def manifest_short_clips(manifest: Manifest, seq_len: int) -> ShortClips:
    """:func:`short_clips` of a split, from its manifest (no shard is read)."""
    return short_clips([clip.frames for shard in manifest.shards for clip in shard.clips], seq_len)


def worker_slot() -> tuple[int, int]:
    """``(worker id, number of workers)`` of the calling DataLoader worker; ``(0, 1)`` outside."""
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def share(total: int, index: int, parts: int) -> int:
    """Size of part ``index`` when ``total`` is split into ``parts`` near-equal parts (larger
    parts first)."""
    return total // parts + (1 if index < total % parts else 0)


def rank_batch_split(batch_size: int, ratio_2d: float, world_size: int, rank: int,
                     groups: Sequence[str]) -> dict[str, int]:
    """Windows per group in one batch of ``rank``.

    The global batch is split first (``int(batch_size * ratio_2d)`` 2D-only windows, the rest
    3D: 19/13 for 32 and 0.6, TCMR's rule), then each group's global count is spread over the
    ranks with ``share``, so the global batch always holds exactly that split and every rank the
    same number ``batch_size / world_size`` of windows. A group without datasets gets nothing
    and the other takes the whole batch.
    """
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} (global) is not divisible by the world size "
                         f"{world_size}")
    if not 0.0 <= ratio_2d <= 1.0:
        raise ValueError(f"ratio_2d: expected a value in [0, 1], got {ratio_2d}")
    global_2d = int(batch_size * ratio_2d) if set(groups) == set(GROUPS) else (
        batch_size if "2d" in groups else 0)
    per_rank = batch_size // world_size
    n_2d = share(global_2d, rank, world_size)
    # ranks with an extra 2D window take one 3D window less, keeping every rank's batch equal
    return {"2d": n_2d, "3d": per_rank - n_2d}


# ----------------------------------------------------------------------------- training


def clip_frame_arrays(clip: Mapping[str, Any], supervise_smpl: bool = True) -> dict[str, np.ndarray]:
    """Per-frame training arrays of a clip, in the batch layout (see docs/data.md); features
    keep their stored dtype (float16 halves what a clip pool holds) until collated.
    ``supervise_smpl=False`` zeroes ``w_smpl`` whatever the clip holds."""
    meta, valid = clip["meta"], clip["valid"].astype(bool)
    if meta["kind"] == "motion":  # real motion for a motion prior: poses only
        return {"pose": clip["pose"], "valid": valid}
    length = len(valid)
    supervision = {**meta["supervision"], "smpl": meta["supervision"]["smpl"] and supervise_smpl}
    kp3d = (convert_joints(clip["kp3d"], meta["joints3d"], TRAIN_JOINTS) if "kp3d" in clip
            else np.zeros((length, len(joint_names(TRAIN_JOINTS)), 3), np.float32))
    zeros = {"kp2d": (NUM_SPIN_JOINTS, 3), "pose": (NUM_POSE_PARAMS,), "shape": (NUM_BETAS,)}
    arrays = {name: clip[name] if name in clip else np.zeros((length, *shape), np.float32)
              for name, shape in zeros.items()}
    return {
        "features": clip["features"], **arrays, "kp3d": kp3d,
        "w_kp2d": (valid & supervision["kp2d"]).astype(np.float32),
        "w_kp3d": (valid & supervision["kp3d"]).astype(np.float32),
        "w_smpl": (valid & supervision["smpl"]).astype(np.float32),
        "valid": valid,
    }


@dataclass(frozen=True)
class TrainStreamConfig:
    """Everything a training stream needs; plain values so it pickles into workers."""

    seq_len: int
    stride: int
    steps_per_epoch: int
    clip_pool: int
    seed: int
    skip_short_clips: bool
    ignore_smpl: tuple[str, ...] = ()  # dataset names whose SMPL is not supervised


class TrainWindows(IterableDataset):
    """Exactly ``steps_per_epoch`` batches of windows per epoch for one rank.

    Each worker yields its ``share`` of the batches. For every (dataset, rank, worker) a shard
    stream resamples, with replacement, from that slot's part of the shard list
    (``shards[slot::slots]``, slot = rank * workers + worker; all shards when there are fewer
    shards than slots), and windows of ``seq_len`` frames are cut from each clip at ``stride``
    with a random phase. The windows of ``clip_pool`` clips are interleaved
    (:func:`interleave_windows`), so consecutive windows come from different clips. A batch
    takes ``n_2d`` windows from the 2D group and ``n_3d`` from the 3D group (2D first), each
    window from a dataset of its group drawn by weight. Randomness is seeded from (seed, rank, worker, epoch): set ``epoch`` before each
    epoch (``EpochLoader`` does). The epoch lives in shared memory, so persistent workers read
    the value set in the main process when their next pass starts.

    Raises ``DataError`` at construction when a dataset holds no clip of ``seq_len`` frames (no
    window could ever be cut from it; skipping short clips would wait forever).
    """

    def __init__(self, manifests: Sequence[Manifest], datasets: Sequence[TrainDataset],
                 counts: Mapping[str, int], config: TrainStreamConfig, rank: int,
                 world_size: int) -> None:
        super().__init__()
        self.manifests, self.datasets = list(manifests), list(datasets)
        self.counts, self.config = dict(counts), config
        self.rank, self.world_size = rank, world_size
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._check_windows_exist()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.fill_(value)

    def __len__(self) -> int:
        return self.config.steps_per_epoch

    def _check_windows_exist(self) -> None:
        length = self.config.seq_len
        longest = [(_longest_clip(m.shards), m, d) for m, d in zip(self.manifests, self.datasets)]
        too_short = [f"{d.path} ({m.dataset}/{m.split}, longest clip {frames} frames)"
                     for frames, m, d in longest if frames < length]
        if too_short:
            raise DataError(f"no clip is long enough for a training window of seq_len={length} "
                            f"frames in {'; '.join(too_short)}: lower seq_len or use longer "
                            "clips (skip_short_clips skips short clips, it cannot make windows)")

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker, workers = worker_slot()
        seed = np.random.SeedSequence([self.config.seed, self.rank, worker, self.epoch])
        rng = random.Random(int(seed.generate_state(1)[0]))
        slot, slots = self.rank * workers + worker, self.world_size * workers
        self.skipped = 0
        mixes = {group: self._group_mix(group, slot, slots, rng) for group in GROUPS
                 if self.counts[group]}
        for _ in range(share(self.config.steps_per_epoch, worker, workers)):
            windows = [(group, next(mixes[group])) for group in GROUPS
                       for _ in range(self.counts[group])]
            batch = collate_windows(windows, self.config.seq_len)
            batch["skipped_clips"], self.skipped = torch.tensor(self.skipped), 0
            yield batch

    def _group_mix(self, group: str, slot: int, slots: int,
                   rng: random.Random) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        members = [(m, d) for m, d in zip(self.manifests, self.datasets) if d.group == group]
        streams = [self._windows(m, slot, slots, rng) for m, _ in members]
        weights = [d.weight for _, d in members]
        while True:
            yield next(rng.choices(streams, weights)[0])

    def _windows(self, manifest: Manifest, slot: int, slots: int,
                 rng: random.Random) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        shards = list(manifest.shards[slot::slots]) or list(manifest.shards)
        if _longest_clip(shards) < self.config.seq_len:  # this slot's part holds no window
            shards = [s for s in manifest.shards if _longest_clip([s]) >= self.config.seq_len]
        return interleave_windows(self._clip_visits(manifest, shards, rng), self.config.clip_pool,
                                  rng)

    def _clip_visits(self, manifest: Manifest, shards: list[ShardEntry],
                     rng: random.Random) -> Iterator[tuple[dict[str, np.ndarray], list[int]]]:
        """Endless clips of random shards, each with its window starts (``stride`` apart from
        a random phase)."""
        length, stride = self.config.seq_len, self.config.stride
        while True:
            shard = rng.choice(shards)
            for sample, entry in zip(shard_samples(manifest, shard), shard.clips):
                clip = decode_sample(sample, manifest.feature_dim)
                check_clip_frames(clip, entry)
                frames = len(clip["valid"])
                if frames < length:
                    self._short_clip(clip, frames)
                    continue
                phase = rng.randrange(min(stride, frames - length + 1))
                yield (clip_frame_arrays(clip, manifest.dataset not in self.config.ignore_smpl),
                       list(range(phase, frames - length + 1, stride)))

    def _short_clip(self, clip: Mapping[str, Any], frames: int) -> None:
        where = f"shard {clip['__shard__']}, sample {clip['__key__']!r}"
        if not self.config.skip_short_clips:
            raise ClipError(f"{where}: expected at least seq_len={self.config.seq_len} frames for "
                            f"a training window, got {frames} (skip_short_clips: true skips "
                            "such clips, as TCMR does)")
        self.skipped += 1


def interleave_windows(clips: Iterator[tuple[dict[str, np.ndarray], list[int]]], pool_size: int,
                       rng: random.Random) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """Every window of every clip of ``clips`` (``(targets, starts)``, an endless stream), drawn
    from a pool of ``pool_size`` clips: each window comes from a random clip of the pool (a
    random one of its remaining windows), and a clip whose windows are spent is replaced by the
    next one. Consecutive windows thus come from different clips, as in a global shuffle when
    the pool is well above the batch size; the pool's clips are what it holds in memory."""
    if pool_size < 1:
        raise ValueError(f"clip_pool must be >= 1, got {pool_size}")
    pool = [(targets, rng.sample(starts, len(starts))) for targets, starts in
            itertools.islice(clips, pool_size)]
    while True:
        index = rng.randrange(len(pool))
        targets, starts = pool[index]
        yield targets, starts.pop()
        if not starts:
            targets, starts = next(clips)
            pool[index] = targets, rng.sample(starts, len(starts))


def _longest_clip(shards: Sequence[ShardEntry]) -> int:
    """Frames of the longest clip the shards' manifest entries list (0 when none)."""
    return max((c.frames for s in shards for c in s.clips), default=0)


def collate_windows(windows: Sequence[tuple[str, tuple[dict[str, np.ndarray], int]]],
                    seq_len: int) -> dict[str, torch.Tensor]:
    """Stack ``(group, (targets, start))`` windows into a batch of tensors."""
    names = windows[0][1][0].keys()
    stacked = {name: np.stack([t[name][s:s + seq_len] for _, (t, s) in windows]) for name in names}
    batch = {name: torch.from_numpy(array.astype(np.float32) if array.dtype == np.float16 else array)
             for name, array in stacked.items()}
    batch["is_2d_only"] = torch.tensor([group == "2d" for group, _ in windows])
    return batch


class EpochLoader:
    """The training loader of one rank: a DataLoader over ``TrainWindows`` that sets the
    stream's epoch before each pass (``epoch`` = passes started), counts batches and skipped
    clips, and removes the
    ``skipped_clips`` bookkeeping entry from each batch. Not a DataLoader, so Lightning injects no
    sampler into it.

    Resumable (Lightning saves :meth:`state_dict` in every checkpoint and loads it on resume):
    a loader restored from a checkpoint taken in the middle of a pass replays that pass's stream
    and skips the batches already trained on, so the resumed run sees exactly the batches the
    uninterrupted run would have seen. Lightning fetches one batch per training step from a
    loader of known length, so the batches yielded in a pass are the batches trained on.
    """

    def __init__(self, dataset: TrainWindows, num_workers: int, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.loader = DataLoader(dataset, batch_size=None, pin_memory=pin_memory,
                                 **worker_options(num_workers))
        self.epoch = 0
        self.batches_consumed = 0
        self.skipped_clips = 0
        self.batches_in_pass = 0  # yielded by the pass under way (or the last one)
        self.skip_batches = 0  # of the next pass, already trained on before a resume

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        # counted on start: Lightning stops after len(self) batches without exhausting us
        self.dataset.epoch, self.epoch = self.epoch, self.epoch + 1
        skip, self.skip_batches = self.skip_batches, 0
        self.batches_in_pass = skip
        for index, batch in enumerate(self.loader):
            if index < skip:  # replayed up to where the checkpoint was taken
                continue
            self.skipped_clips += int(batch.pop("skipped_clips"))
            self.batches_consumed += 1
            self.batches_in_pass += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """``epoch``: the stream epoch the next pass starts with; ``skip_batches``: how many of
        its batches were already consumed (a pass under way); the totals of batches consumed and
        clips skipped on this rank."""
        under_way = 0 < self.batches_in_pass < len(self)
        return {"epoch": self.epoch - 1 if under_way else self.epoch,
                "skip_batches": self.batches_in_pass if under_way else 0,
                "batches_consumed": self.batches_consumed, "skipped_clips": self.skipped_clips}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue where :meth:`state_dict` was taken (missing keys: a fresh start)."""
        self.epoch = state.get("epoch", 0)
        self.skip_batches = state.get("skip_batches", 0)
        self.batches_consumed = state.get("batches_consumed", 0)
        self.skipped_clips = state.get("skipped_clips", 0)
        self.batches_in_pass = 0


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class SequenceRef:
    """One evaluation sequence: a clip of a manifest's shard."""

    shard: str
    key: str
    frames: int


def plan_sequences(manifest: Manifest, world_size: int) -> list[list[SequenceRef | None]]:
    """Every clip of the manifest assigned to exactly one rank, balanced by frame count.

    Greedy longest-first: clips sorted by frames (descending; ties by shard and key, so every
    rank computes the same plan) each go to the rank with the fewest frames so far (ties: fewest
    clips, then lowest rank). Lists are then padded with ``None`` to the longest one, so every
    rank has the same number of items.
    """
    refs = sorted((SequenceRef(s.name, c.key, c.frames) for s in manifest.shards for c in s.clips),
                  key=lambda r: (-r.frames, r.shard, r.key))
    plan: list[list[SequenceRef | None]] = [[] for _ in range(world_size)]
    loads = [0] * world_size
    for ref in refs:
        rank = min(range(world_size), key=lambda r: (loads[r], len(plan[r]), r))
        plan[rank].append(ref)
        loads[rank] += ref.frames
    longest = max(len(p) for p in plan)
    return [p + [None] * (longest - len(p)) for p in plan]


class RankSequences(IterableDataset):
    """The whole sequences one rank evaluates, in plan order; ``None`` entries are padding.

    Worker ``w`` of ``k`` reads items ``w, w + k, ...``; PyTorch's DataLoader takes them from the
    workers in turn, so the order and the count (``len``) are those of the plan for any number of
    workers. An IterableDataset, so Lightning never injects a DistributedSampler.
    """

    def __init__(self, name: str, manifest: Manifest, refs: Sequence[SequenceRef | None]) -> None:
        super().__init__()
        self.name, self.manifest, self.refs = name, manifest, list(refs)
        self._entries: dict[tuple[str, str], tuple[ShardEntry, ClipEntry]] = {
            (s.name, c.key): (s, c) for s in manifest.shards for c in s.clips}

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker, workers = worker_slot()
        for index in range(worker, len(self.refs), workers):
            yield self.item(index)

    def item(self, index: int) -> dict[str, Any]:
        """Item ``index`` of this rank (see docs/data.md for the layout)."""
        ref = self.refs[index]
        if ref is None:
            return self._padding()
        shard, entry = self._entries[(ref.shard, ref.key)]
        clip = read_clip(self.manifest, shard, entry)
        item: dict[str, Any] = {name: torch.from_numpy(clip[name]) for name in
                                ("kp2d", "kp3d", "pose", "shape", "frame_id") if name in clip}
        item["features"] = torch.from_numpy(clip["features"].astype(np.float32))
        item["valid"] = torch.from_numpy(clip["valid"].astype(bool))
        item["fps"] = float(clip["meta"]["fps"])
        return {**item, **self._labels(ref.key, is_padding=False)}

    def _padding(self) -> dict[str, Any]:
        """A one-frame item with ``valid`` all False: contributes nothing to any metric."""
        joints = len(joint_names(self.manifest.joints3d)) if self.manifest.joints3d else 0
        item: dict[str, Any] = {
            "features": torch.zeros(1, self.manifest.feature_dim),
            "kp2d": torch.zeros(1, NUM_SPIN_JOINTS, 3), "pose": torch.zeros(1, NUM_POSE_PARAMS), "shape": torch.zeros(1, NUM_BETAS),
            "frame_id": torch.zeros(1, dtype=torch.int64), "valid": torch.zeros(1, dtype=torch.bool),
            "fps": 0.0,
        }
        if joints:
            item["kp3d"] = torch.zeros(1, joints, 3)
        return {**item, **self._labels("", is_padding=True)}

    def _labels(self, sequence: str, is_padding: bool) -> dict[str, Any]:
        return {"sequence": sequence, "dataset": self.name, "joints3d": self.manifest.joints3d,
                "is_padding": is_padding}


def eval_loader(name: str, manifest: Manifest, rank: int, world_size: int,
                num_workers: int, pin_memory: bool = False) -> DataLoader:
    """The loader of ``rank``: one whole sequence per batch (no batch dimension), pinned in
    host memory with ``pin_memory``."""
    if manifest.kind != "clip" or not manifest.feature_dim:
        raise DataError(f"{manifest.directory}: evaluation needs kind 'clip' shards with "
                        f"features, got kind {manifest.kind!r}")
    refs = plan_sequences(manifest, world_size)[rank]
    return DataLoader(RankSequences(name, manifest, refs), batch_size=None, pin_memory=pin_memory,
                      **worker_options(min(num_workers, len(refs))))
