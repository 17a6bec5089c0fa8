"""``str-lightning features``: a video plus person boxes to clip shards ``predict`` reads.

Every run of consecutive boxed frames becomes one clip (one sequence) of the shard schema
(datamodules/schema.py) with ``kind`` ``clip``, no supervision, ``features`` (L, 2048) float32
from SPIN's ResNet-50, ``kp2d`` zeros (nothing to supervise), ``valid`` ones, ``frame_id`` (the
frame's index in the video), ``bbox`` ``(cx, cy, w, h)`` of the user's box, and in ``meta``
also ``image_size`` ``[width, height]`` and ``crop_scale``, which the demo needs to put the
predicted mesh back on the frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from datamodules.schema import ShardWriter
from str_lightning.app.video.frames import (
    CROP_SCALE,
    Video,
    VideoInputError,
    box_to_bbox,
    consecutive_runs,
    crop_frame,
    crop_square,
    normalise_crops,
)
from str_lightning.body.joints import NUM_SPIN_JOINTS

SPLIT = "predict"
NO_SUPERVISION = {"kp2d": False, "kp3d": False, "smpl": False}


def frame_features(video: Video, boxes: dict[int, tuple[float, float, float, float]],
                   backbone: nn.Module, batch_size: int = 32, device: str = "cpu"
                   ) -> dict[int, np.ndarray]:
    """Frame index -> 2048-d feature of the person's crop, for every boxed frame."""
    backbone = backbone.to(device).eval()
    features: dict[int, np.ndarray] = {}
    batch: list[tuple[int, torch.Tensor]] = []

    def flush() -> None:
        crops = normalise_crops(torch.stack([crop for _, crop in batch]).to(device))
        with torch.no_grad():
            out = backbone(crops).float().cpu().numpy()
        features.update({index: row for (index, _), row in zip(batch, out)})
        batch.clear()

    for index, frame in _boxed_frames(video, boxes):
        bbox = torch.tensor(box_to_bbox(boxes[index]), dtype=torch.float64)
        centre, side = crop_square(bbox)
        image = torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0
        batch.append((index, crop_frame(image, centre, side)))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return features


def _boxed_frames(video: Video, boxes: dict[int, tuple]) -> Iterator[tuple[int, np.ndarray]]:
    """The frames that have a box; an error when a box names a frame past the video's end."""
    count = 0
    for index, frame in enumerate(video.frames()):
        count = index + 1
        if index in boxes:
            yield index, frame
    beyond = sorted(f for f in boxes if f >= count)
    if beyond:
        raise VideoInputError(f"{video.path}: has {count} frames, but the boxes name frames "
                              f"{beyond[:5]} (frame indices start at 0)")


def video_clips(video: Video, boxes: dict[int, tuple[float, float, float, float]],
                features: dict[int, np.ndarray], dataset: str) -> list[dict]:
    """The shard clips of a video: one per run of consecutive boxed frames."""
    clips = []
    for run in consecutive_runs(list(features)):
        frames = len(run)
        clips.append({
            "meta": {"dataset": dataset, "video": video.name, "start": run[0], "split": SPLIT,
                     "fps": video.fps, "kind": "clip", "supervision": dict(NO_SUPERVISION),
                     "joints3d": "", "image_size": [video.width, video.height],
                     "crop_scale": CROP_SCALE},
            "features": np.stack([features[i] for i in run]).astype(np.float32),
            "kp2d": np.zeros((frames, NUM_SPIN_JOINTS, 3), np.float32),
            "valid": np.ones(frames, np.uint8),
            "frame_id": np.asarray(run, np.int64),
            "bbox": np.asarray([box_to_bbox(boxes[i]) for i in run], np.float32),
        })
    return clips


def write_video_shards(video: Video, boxes: dict[int, tuple[float, float, float, float]],
                       backbone: nn.Module, out_dir: str | Path, dataset: str = "video",
                       batch_size: int = 32, device: str = "cpu", overwrite: bool = False
                       ) -> list[dict]:
    """Extract the features of ``video`` and write its clips to ``out_dir`` (split ``predict``).

    Returns the clips written.
    """
    features = frame_features(video, boxes, backbone, batch_size, device)
    clips = video_clips(video, boxes, features, dataset)
    with ShardWriter(out_dir, dataset=dataset, split=SPLIT, overwrite=overwrite) as writer:
        for clip in clips:
            writer.write(clip)
    return clips
