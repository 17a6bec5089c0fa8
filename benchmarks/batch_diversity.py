"""How many distinct clips a training batch holds: the loader as configured vs a global shuffle.

Windows of one clip overlap and look alike, so a batch whose windows come from a few clips is
worth fewer independent samples than its size. This script reads batches from
``ShardDataModule``'s training loader (its public API, no worker processes) on a split
directory tree such as the synthetic benchmark, finds the clip of every window by the bytes of
its first frame's feature vector, and counts the distinct clips per batch, per group (2D-only
and 3D windows) and in all. The reference is TCMR's loader: a global shuffle of every stride-1
window of each group (simulated by sampling the batch's windows without replacement).

Usage:
    python benchmarks/batch_diversity.py [--data configs/data/synthetic.yaml] [--batches 300]
        [--steps-per-epoch 100] [--variant clip_pool=1 --variant clip_pool=64 ...]

Each ``--variant`` sets data options (``KEY=VALUE[,KEY=VALUE]``) on top of the data config;
without one, the config's own settings are measured.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.datamodule import ShardDataModule
from datamodules.schema import decode_sample, read_manifest, shard_samples


def clip_index(split: str) -> tuple[dict[bytes, str], dict[str, int]]:
    """``{feature row bytes: clip key}`` for every frame of ``split`` and ``{clip key: frames}``."""
    manifest = read_manifest(split)
    rows, lengths = {}, {}
    for shard in manifest.shards:
        for sample, entry in zip(shard_samples(manifest, shard), shard.clips):
            features = decode_sample(sample, manifest.feature_dim)["features"].astype(np.float32)
            key = f"{Path(split).name}/{entry.key}"
            lengths[key] = len(features)
            rows.update((row.tobytes(), key) for row in features)
    return rows, lengths


def measured(data: dict, batches: int) -> dict[str, float]:
    """Mean distinct clips per batch of the configured loader (epochs of the config's
    ``steps_per_epoch`` batches), per group and in all."""
    module = ShardDataModule(**{**data, "num_workers": 0})
    index: dict[bytes, str] = {}
    for dataset in module.train_datasets:
        index.update(clip_index(dataset.path)[0])
    counts: dict[str, list[int]] = {"2d": [], "3d": [], "all": []}
    loader = module.train_dataloader()
    epochs = itertools.chain.from_iterable(iter(loader) for _ in itertools.count())
    for batch in itertools.islice(epochs, batches):
        clips = [index[window[0].numpy().tobytes()] for window in batch["features"]]
        groups = ["2d" if flag else "3d" for flag in batch["is_2d_only"].tolist()]
        for group in ("2d", "3d"):
            counts[group].append(len({c for c, g in zip(clips, groups) if g == group}))
        counts["all"].append(len(set(clips)))
    return {group: float(np.mean(values)) for group, values in counts.items()}


def global_shuffle(data: dict, batches: int, seq_len: int, rng: np.random.Generator) -> dict[str, float]:
    """Mean distinct clips per batch when each group's windows are drawn without replacement
    from all its stride-1 windows (TCMR's shuffled DataLoader over a concatenated dataset)."""
    module = ShardDataModule(**{**data, "num_workers": 0})
    windows: dict[str, list[str]] = {"2d": [], "3d": []}
    for dataset in module.train_datasets:
        for clip, frames in clip_index(dataset.path)[1].items():
            windows[dataset.group] += [clip] * max(0, frames - seq_len + 1)
    size_2d = int(module.batch_size * module.ratio_2d)
    sizes = {"2d": size_2d, "3d": module.batch_size - size_2d}
    counts: dict[str, list[int]] = {"2d": [], "3d": [], "all": []}
    for _ in range(batches):
        drawn = {g: rng.choice(len(windows[g]), sizes[g], replace=False) for g in sizes}
        per_group = {g: {windows[g][i] for i in drawn[g]} for g in sizes}
        for group, clips in per_group.items():
            counts[group].append(len(clips))
        counts["all"].append(sum(len(c) for c in per_group.values()))
    return {group: float(np.mean(values)) for group, values in counts.items()}


def parse_variant(text: str) -> dict:
    return {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in text.split(","))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="configs/data/synthetic.yaml")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--steps-per-epoch", type=int, default=100,
                        help="batches per epoch (the stream restarts every epoch)")
    parser.add_argument("--variant", action="append", default=[], type=parse_variant)
    args = parser.parse_args()
    data = yaml.safe_load(Path(args.data).read_text())
    seq_len = data.get("seq_len", 16)
    data = {**data, "steps_per_epoch": args.steps_per_epoch}
    rows = [("global shuffle (TCMR)", global_shuffle(data, args.batches, seq_len,
                                                       np.random.default_rng(0)))]
    for variant in args.variant or [{}]:
        name = ", ".join(f"{k}={v}" for k, v in variant.items()) or "as configured"
        rows.append((f"stream, {name}", measured({**data, **variant}, args.batches)))
    print(f"distinct clips per batch (mean of {args.batches} batches, epochs of "
          f"{args.steps_per_epoch}; {args.data})\n")
    print("| loader | 3D windows | 2D-only windows | whole batch |")
    print("|---|---|---|---|")
    for name, values in rows:
        print(f"| {name} | {values['3d']:.1f} | {values['2d']:.1f} | {values['all']:.1f} |")


if __name__ == "__main__":
    main()
