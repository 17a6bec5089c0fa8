"""Builders of small clip shards shared by the data tests."""

import numpy as np

from datamodules.schema import ShardWriter

FEATURE_DIM = 6


def make_clip(video: str, frames: int, *, start: int = 0, split: str = "train",
              dataset: str = "toy", feature_dtype: str = "float32", kp3d: str = "common14",
              smpl: bool = True, bbox: bool = False, seed: int = 0,
              feature_dim: int = FEATURE_DIM) -> dict:
    """A schema-conformant clip with random contents (``kp3d=""``: a 2D-only clip)."""
    rng = np.random.default_rng(seed)
    clip = {
        "meta": {"dataset": dataset, "video": video, "start": start, "split": split,
                 "fps": 25.0, "kind": "clip", "joints3d": kp3d,
                 "supervision": {"kp2d": True, "kp3d": bool(kp3d), "smpl": smpl}},
        "features": rng.random((frames, feature_dim)).astype(feature_dtype),
        "kp2d": rng.uniform(-1, 1, (frames, 49, 3)).astype(np.float32),
        "valid": (rng.random(frames) > 0.2).astype(np.uint8),
        "frame_id": np.arange(start, start + frames, dtype=np.int64),
    }
    if kp3d:
        clip["kp3d"] = rng.standard_normal((frames, 14 if kp3d == "common14" else 49, 3)).astype(
            np.float32)
    if smpl:
        clip["pose"] = rng.standard_normal((frames, 72)).astype(np.float32)
        clip["shape"] = rng.standard_normal((frames, 10)).astype(np.float32)
    if bbox:
        clip["bbox"] = rng.random((frames, 4)).astype(np.float32)
    return clip


def write_split(directory, lengths, *, per_shard: int = 2, **clip_options) -> list[dict]:
    """Write clips of the given lengths (one video each) and return them."""
    clips = [make_clip(f"video{i}", n, seed=i, **clip_options) for i, n in enumerate(lengths)]
    split = clip_options.get("split", "train")
    with ShardWriter(directory, dataset=clip_options.get("dataset", "toy"), split=split,
                     max_samples_per_shard=per_shard) as writer:
        for clip in clips:
            writer.write(clip)
    return clips
