"""A user's video (or folder of frames), its person boxes, and SPIN's crops of them.

Boxes (one person track, docs/usage-own-video.md) are corners ``x0, y0, x1, y1`` in pixels of
the full frame, in continuous image coordinates (pixel ``i`` covers ``[i, i + 1)``), one row per
frame that shows the person; frames without a row are left out. The crop is SPIN's: a square of
side ``1.2 * max(w, h)`` centred on the box, resampled bilinearly to 224 x 224 (zeros outside the
frame), scaled to [0, 1] and normalised with ImageNet's mean and std on RGB.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

CROP_SIZE = 224
CROP_SCALE = 1.2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
BOX_COLUMNS = ("frame", "x0", "y0", "x1", "y1")


class VideoInputError(ValueError):
    """A video, frame folder or box file that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Video:
    """A readable video file or folder of frames: name, frame rate and frame size (pixels)."""

    path: Path
    fps: float
    width: int
    height: int

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order as ``(height, width, 3)`` uint8 RGB."""
        import imageio.v3 as iio

        if self.path.is_dir():
            for path in frame_files(self.path):
                yield _rgb(iio.imread(path), path)
        else:
            for frame in iio.imiter(self.path):
                yield _rgb(frame, self.path)


def frame_files(directory: Path) -> list[Path]:
    """The images of a frame folder, sorted by name (name them so that this is time order)."""
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoInputError(f"{directory}: no frames ({', '.join(IMAGE_SUFFIXES)} files)")
    return files


def open_video(path: str | Path, fps: float | None = None) -> Video:
    """Open a video file (any format ffmpeg reads) or a folder of frames.

    ``fps`` overrides the file's frame rate; a folder of frames needs it.
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        if fps is None:
            raise VideoInputError(f"{path}: a folder of frames has no frame rate; pass --fps")
        first = _rgb(iio.imread(frame_files(path)[0]), path)
    else:
        try:
            meta = iio.immeta(path)
            first = _rgb(next(iter(iio.imiter(path))), path)
        except (OSError, StopIteration, ValueError) as err:
            lines = str(err).strip().splitlines() or [type(err).__name__]
            reason = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
            raise VideoInputError(f"{path}: cannot read frames ({reason})") from err
        fps = fps or meta.get("fps")
        if not fps:
            raise VideoInputError(f"{path}: the file states no frame rate; pass --fps")
    return Video(path, float(fps), first.shape[1], first.shape[0])


def _rgb(frame: np.ndarray, source: Path) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.ndim != 3 or frame.shape[-1] not in (3, 4) or frame.dtype != np.uint8:
        raise VideoInputError(f"{source}: expected 8-bit RGB frames, got shape {frame.shape} "
                              f"dtype {frame.dtype}")
    return frame[..., :3]


def read_boxes(path: str | Path) -> dict[int, tuple[float, float, float, float]]:
    """Frame index -> box ``(x0, y0, x1, y1)`` from a ``.csv`` (header ``frame,x0,y0,x1,y1``)
    or ``.json`` (a list of objects with those keys) file; see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix.lower() == ".csv":
        with open(path, newline="") as stream:
            reader = csv.DictReader(stream)
            if reader.fieldnames is None or set(BOX_COLUMNS) - set(reader.fieldnames):
                raise VideoInputError(f"{path}: expected a header with columns "
                                      f"{','.join(BOX_COLUMNS)}, got {reader.fieldnames}")
            rows = list(reader)
        where = [f"{path}, line {i + 2}" for i in range(len(rows))]
    elif path.suffix.lower() == ".json":
        rows = json.loads(path.read_text())
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise VideoInputError(f"{path}: expected a JSON list of objects with keys "
                                  f"{list(BOX_COLUMNS)}")
        where = [f"{path}, entry {i}" for i in range(len(rows))]
    else:
        raise VideoInputError(f"{path}: expected a .csv or .json box file, got {path.suffix!r}")
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for row, place in zip(rows, where):
        frame, box = _parse_box(row, place)
        if frame in boxes:
            raise VideoInputError(f"{place}: frame {frame} has a second box (one track only)")
        boxes[frame] = box
    if not boxes:
        raise VideoInputError(f"{path}: no boxes")
    return boxes


def _parse_box(row: dict, place: str) -> tuple[int, tuple[float, float, float, float]]:
    missing = [k for k in BOX_COLUMNS if row.get(k) in (None, "")]
    if missing:
        raise VideoInputError(f"{place}: missing {missing} (expected {list(BOX_COLUMNS)})")
    try:
        frame_value = float(row["frame"])
        x0, y0, x1, y1 = (float(row[k]) for k in BOX_COLUMNS[1:])
    except (TypeError, ValueError) as err:
        raise VideoInputError(f"{place}: expected numbers, got {row} ({err})") from err
    if frame_value < 0 or frame_value != int(frame_value):
        raise VideoInputError(f"{place}: frame: expected an integer >= 0, got {row['frame']!r}")
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or not (x1 > x0 and y1 > y0):
        raise VideoInputError(f"{place}: expected finite corners with x1 > x0 and y1 > y0, got "
                              f"x0={x0}, y0={y0}, x1={x1}, y1={y1}")
    return int(frame_value), (x0, y0, x1, y1)


def box_to_bbox(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Corners ``(x0, y0, x1, y1)`` to the shards' ``bbox`` ``(cx, cy, w, h)``."""
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)


def crop_square(bbox: Tensor) -> tuple[Tensor, Tensor]:
    """SPIN's crop of ``bbox`` ``(..., 4) = (cx, cy, w, h)``: centre ``(..., 2)`` and side."""
    return bbox[..., :2], CROP_SCALE * bbox[..., 2:].amax(-1)


def crop_frame(frame: Tensor, centre: Tensor, side: float | Tensor,
               size: int = CROP_SIZE) -> Tensor:
    """The square of ``side`` pixels centred at ``centre`` (x, y) of ``frame`` ``(3, H, W)``
    (float), resampled bilinearly to ``(3, size, size)``; zeros where it leaves the frame.

    Crop pixel ``j`` samples the frame at ``centre - side / 2 + (j + 0.5) * side / size``.
    """
    height, width = frame.shape[-2:]
    steps = (torch.arange(size, dtype=torch.float64) + 0.5) * float(side) / size - float(side) / 2
    x = (float(centre[0]) + steps) * 2 / width - 1
    y = (float(centre[1]) + steps) * 2 / height - 1
    grid = torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1).to(frame.dtype)
    return F.grid_sample(frame[None], grid[None], mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0]


def normalise_crops(crops: Tensor) -> Tensor:
    """Crops ``(B, 3, S, S)`` in [0, 1] to the ImageNet-normalised network input."""
    mean = crops.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = crops.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (crops - mean) / std


def consecutive_runs(frames: list[int]) -> list[list[int]]:
    """Sorted frame indices split where a frame is skipped: one sequence per run."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][-1] + 1:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return runs
