"""Convert one TCMR/VIBE preprocessed db file (docs/data.md) into a split directory of clip shards.

A db file is a set of flat per-frame arrays of equal length N. Rows with the same ``vid_name``
that are contiguous form one video (a name seen again after another one starts a new video,
named ``<name>~<k>``). Train videos are cut into clips of at most ``max_clip_len`` frames of
near-equal length (no short tail clip); val/test clips are whole videos. No video is dropped,
however short (training takes windows only from clips of at least ``seq_len`` frames; the
report counts the shorter ones). All targets are written as float32 straight from the file's
values. A file whose name is a released file of another dataset, split or variant than the
arguments and ``out`` say is refused (``files.check_released_file``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.converters.datasets import DATASETS, SOURCES, DatasetSpec
from datamodules.converters.files import check_released_file
from datamodules.converters.keypoints import (
    INSTA_CROP_BBOX,
    normalise_to_crop,
)
from datamodules.converters.safe_joblib import (
    JoblibFormatError,
    UnsafePickleError,
    load_joblib_pickle,
)
from datamodules.loading import short_clips
from datamodules.schema import DataError, ShardWriter
from str_lightning.body.joints import (
    NUM_BETAS,
    NUM_POSE_PARAMS,
    convert_joints,
    joint_names,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_CLIP_LEN = 256
DEFAULT_SEQ_LEN = 16  # the window length T of every paper recipe
REPORT_NAME = "conversion.json"
_TRAILING_NUMBER = re.compile(r"(\d+)\D*$")


class ConversionError(DataError):
    """A db file, or the arguments naming it, that cannot be converted (the message says why)."""


@dataclass
class ConversionReport:
    """What a conversion did and found; written to ``out/conversion.json``."""

    source: str
    dataset: str
    split: str
    db: str
    max_clip_len: int
    use_smpl: bool
    fps: float
    seq_len: int = DEFAULT_SEQ_LEN
    released_file: str | None = None
    shard_directory: str | None = None
    rows: int = 0
    videos: int = 0
    clips: int = 0
    short_clips: int = 0
    short_clip_frames: int = 0
    repeated_video_names: list[str] = field(default_factory=list)
    videos_with_frame_id_from_position: list[str] = field(default_factory=list)
    frames_without_bbox: int = 0
    frames_keypoints_outside_crop: int = 0
    clips_without_smpl: int = 0


def convert(source: str, dataset: str, split: str, db: str | Path, out: str | Path,
            max_clip_len: int = DEFAULT_MAX_CLIP_LEN, *, use_smpl: bool = True,
            fps: float | None = None, max_samples_per_shard: int = 64,
            overwrite: bool = False, seq_len: int = DEFAULT_SEQ_LEN) -> Path:
    """Convert the db file ``db`` of ``dataset``/``split`` written by ``source`` into ``out``.

    ``source``: "tcmr" or "vibe"; ``dataset``: a key of ``DATASETS``; ``split``: one of that
    dataset's splits. ``use_smpl=False`` writes no pose/shape even where the file has them;
    clips whose file rows hold an all-zero pose (H36M "_nosmpl" files) never get SMPL. ``fps``
    overrides the dataset's nominal frame rate (required for TCMR's AMASS file). ``seq_len``:
    the training window length whose losses the report counts (clips shorter than it). Writes
    the shards, ``manifest.json`` and ``conversion.json`` (a ``ConversionReport``) and returns
    ``out``. Raises ``ConversionError`` (a ``DataError``) for bad arguments or a file that does not
    match the layout in docs/data.md, naming the file, key, expected and actual, and
    ``WrongVariantError`` for a released file written as another dataset, split or variant.
    """
    spec = _resolve_spec(source, dataset, split)
    if max_clip_len < 1 or seq_len < 1:
        raise ConversionError(f"max_clip_len and seq_len must be >= 1, got {max_clip_len}, "
                              f"{seq_len}")
    fps = _resolve_fps(spec, source, fps)
    db, out = Path(db), Path(out)
    released = check_released_file(source, spec.name, split, db, out)
    report = ConversionReport(source, spec.name, split, str(db), max_clip_len, use_smpl, fps,
                              seq_len, released and released.name,
                              released and released.directory)
    lengths: list[int] = []
    with _open_db(db, spec) as table:
        report.rows = _check_table(table, spec, split, db)
        videos = list(_video_runs(_as_strings(np.asarray(table["vid_name"][:])), report))
        with ShardWriter(out, dataset=spec.name, split=split,
                         max_samples_per_shard=max_samples_per_shard,
                         overwrite=overwrite) as writer:
            for name, rows in videos:
                video = _read_video(table, spec, split, name, rows, use_smpl, report)
                bounds = _chunk_bounds(rows.stop - rows.start,
                                       max_clip_len if split == "train" else None)
                for start, stop in bounds:
                    writer.write(_clip(video, spec, split, name, start, stop, fps, report))
                    lengths.append(stop - start)
    report.videos = len(videos)
    short = short_clips(lengths, seq_len)
    report.short_clips, report.short_clip_frames = short.clips, short.frames
    (out / REPORT_NAME).write_text(json.dumps(asdict(report), indent=1) + "\n")
    _warn_about(report)
    return out


def _resolve_spec(source: str, dataset: str, split: str) -> DatasetSpec:
    if source not in SOURCES:
        raise ConversionError(f"unknown source {source!r}; expected one of {SOURCES}")
    spec = DATASETS.get(dataset)
    if spec is None:
        raise ConversionError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}")
    if source not in spec.fps:
        raise ConversionError(f"source {source!r} has no {dataset} db file; "
                              f"{dataset} comes from {sorted(spec.fps)}")
    if split not in spec.splits:
        hint = (" (TCMR's and VIBE's mpii3d 'val' file is the TEST set TS1-TS6: use --split test)"
                if dataset == "mpii3d" and split == "val" else "")
        raise ConversionError(f"{dataset} has no split {split!r}; expected one of "
                              f"{spec.splits}{hint}")
    return spec


def _resolve_fps(spec: DatasetSpec, source: str, fps: float | None) -> float:
    chosen = spec.fps[source] if fps is None else float(fps)
    if chosen is None:
        raise ConversionError(
            f"the {source} {spec.name} file keeps each sequence's native rate, which it does not "
            "record; pass fps=... or convert VIBE's file (25 fps)")
    if not chosen > 0:
        raise ConversionError(f"fps must be > 0, got {chosen}")
    return chosen


# ----------------------------------------------------------------------------- reading


@contextlib.contextmanager
def _open_db(path: Path, spec: DatasetSpec) -> Iterator[Mapping[str, Any]]:
    """The db file as a mapping key -> array (``.pt``) or key -> h5py dataset (``.h5``)."""
    if not path.is_file():
        raise FileNotFoundError(f"db file {path} does not exist")
    if spec.file_format == "pt":
        try:
            table = load_joblib_pickle(path)
        except (UnsafePickleError, JoblibFormatError) as err:
            raise ConversionError(str(err)) from err
        if not isinstance(table, dict):
            raise ConversionError(f"{path}: expected a dict of arrays, got {type(table).__name__}")
        yield table
        return
    try:
        import h5py
    except ImportError:
        raise ConversionError(f"{path}: reading .h5 db files needs h5py "
                              "(pip install 'str-lightning[converters]')") from None
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ConversionError(f"{path}: not a readable HDF5 file ({err})") from None
    with handle:
        yield handle


def _required_shapes(table: Mapping[str, Any], spec: DatasetSpec,
                     split: str) -> dict[str, tuple[int | None, ...]]:
    """Expected shape per key; None is any size (the first axis is checked against N)."""
    shapes: dict[str, tuple[int | None, ...]] = {"vid_name": (None,)}
    if spec.kind == "motion":
        shapes["theta"] = (None, 82)
        return shapes
    shapes["features"] = (None, None)
    shapes["joints2D"] = (None, len(joint_names(spec.kp2d_joints)), 3)
    if not spec.kp2d_in_crop:
        shapes["bbox"] = (None, 4)
    if split in spec.kp3d_joints:
        shapes["joints3D"] = (None, len(joint_names(spec.kp3d_joints[split][0])), 3)
    if split in spec.smpl_splits:
        shapes.update(pose=(None, NUM_POSE_PARAMS), shape=(None, NUM_BETAS))
    if split in spec.valid_key:
        key = spec.valid_key[split]
        shapes[key] = (None, 1) if np.ndim(table.get(key, ())) == 2 else (None,)
    return shapes


def _check_table(table: Mapping[str, Any], spec: DatasetSpec, split: str, path: Path) -> int:
    """Check keys and shapes against the layout in docs/data.md and return the row count N."""
    shapes = _required_shapes(table, spec, split)
    missing = sorted(set(shapes) - set(table.keys()))
    if missing:
        raise ConversionError(f"{path}: missing key(s) {missing} for {spec.name}/{split} "
                              f"(file has {sorted(table.keys())})")
    rows = len(table["vid_name"])
    for key, expected in shapes.items():
        actual = tuple(np.shape(table[key]))
        expected = (rows, *expected[1:])
        if len(actual) != len(expected) or any(e not in (None, a)
                                                for e, a in zip(expected, actual)):
            shown = tuple("*" if e is None else e for e in expected)
            raise ConversionError(f"{path}: key {key!r}: expected shape {shown}, got {actual}")
    if rows == 0:
        raise ConversionError(f"{path}: holds no rows")
    return rows


def _as_strings(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.tolist()]


def _video_runs(names: list[str], report: ConversionReport) -> Iterator[tuple[str, slice]]:
    """(video name, rows) per run of equal consecutive names; a repeated name gets ``~k``."""
    seen: dict[str, int] = {}
    start = 0
    for index in range(1, len(names) + 1):
        if index < len(names) and names[index] == names[start]:
            continue
        name = names[start]
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            report.repeated_video_names.append(name)
            name = f"{name}~{seen[name]}"
        yield name, slice(start, index)
        start = index


def _chunk_bounds(length: int, max_len: int | None) -> list[tuple[int, int]]:
    """Near-equal [start, stop) chunks of at most ``max_len`` frames (one chunk when None)."""
    count = 1 if max_len is None else math.ceil(length / max_len)
    edges = np.linspace(0, length, count + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _read_video(table: Mapping[str, Any], spec: DatasetSpec, split: str, name: str,
                rows: slice, use_smpl: bool, report: ConversionReport) -> dict[str, np.ndarray]:
    """Every per-frame array of one video, converted to the shard layout (no meta)."""
    length = rows.stop - rows.start
    video: dict[str, np.ndarray] = {
        "valid": _valid(table, spec, split, rows),
        "frame_id": _frame_ids(table, rows, name, report),
    }
    if spec.kind == "motion":
        theta = np.asarray(table["theta"][rows], dtype=np.float32)
        video.update(pose=theta[:, :NUM_POSE_PARAMS],
                     shape=theta[:, NUM_POSE_PARAMS:NUM_POSE_PARAMS + NUM_BETAS])
        return video
    features = np.asarray(table["features"][rows])
    video["features"] = features if features.dtype in (np.float16, np.float32) \
        else features.astype(np.float32)
    if spec.kp2d_in_crop:
        bbox = np.broadcast_to(np.asarray(INSTA_CROP_BBOX), (length, 4))
    else:
        bbox = np.asarray(table["bbox"][rows], dtype=np.float64)
        video["bbox"] = bbox.astype(np.float32)
        report.frames_without_bbox += int(np.count_nonzero((bbox[:, 2] <= 0) | (bbox[:, 3] <= 0)))
    kp2d = normalise_to_crop(convert_joints(np.asarray(table["joints2D"][rows]), spec.kp2d_joints, "spin49"),
                             bbox)
    report.frames_keypoints_outside_crop += _frames_outside_crop(kp2d)
    video["kp2d"] = kp2d.astype(np.float32)
    if split in spec.kp3d_joints:
        stored, written = spec.kp3d_joints[split]
        kp3d = np.asarray(table["joints3D"][rows], dtype=np.float32)
        video["kp3d"] = kp3d if stored == written else convert_joints(kp3d, stored, written)
    if use_smpl and split in spec.smpl_splits:
        video["pose"] = np.asarray(table["pose"][rows], dtype=np.float32)
        video["shape"] = np.asarray(table["shape"][rows], dtype=np.float32)
    return video


def _valid(table: Mapping[str, Any], spec: DatasetSpec, split: str, rows: slice) -> np.ndarray:
    key = spec.valid_key.get(split)
    if key is None:
        return np.ones(rows.stop - rows.start, dtype=np.uint8)
    return (np.asarray(table[key][rows]).reshape(-1) > 0).astype(np.uint8)


def _frame_ids(table: Mapping[str, Any], rows: slice, name: str,
               report: ConversionReport) -> np.ndarray:
    """Original frame indices: ``frame_id`` (numbers, or strings ending in digits), else the
    digits ending ``img_name``'s file stem, else the row position in the video (reported)."""
    for key in ("frame_id", "img_name"):
        if key not in table:
            continue
        values = np.asarray(table[key][rows])
        if values.dtype.kind in "iu":
            return values.astype(np.int64)
        parsed = [_TRAILING_NUMBER.search(Path(text).stem) for text in _as_strings(values)]
        if all(parsed):
            return np.array([int(m.group(1)) for m in parsed], dtype=np.int64)
    report.videos_with_frame_id_from_position.append(name)
    return np.arange(rows.stop - rows.start, dtype=np.int64)


def _frames_outside_crop(kp2d: np.ndarray) -> int:
    """Frames whose visible keypoints' centre lies outside the 1.2 crop: a sign of a bbox that
    belongs to another frame (the 3DPW/H36M time_pt1 shift, docs/data.md)."""
    visible = kp2d[..., 2] > 0
    count = visible.sum(-1)
    centre = (kp2d[..., :2] * visible[..., None]).sum(-2) / np.maximum(count, 1)[:, None]
    return int(np.count_nonzero((count > 0) & (np.abs(centre) > 1).any(-1)))


# ----------------------------------------------------------------------------- writing


def _clip(video: dict[str, np.ndarray], spec: DatasetSpec, split: str, name: str, start: int,
          stop: int, fps: float, report: ConversionReport) -> dict[str, Any]:
    arrays = {key: value[start:stop] for key, value in video.items()}
    smpl = "pose" in arrays
    if smpl and spec.kind == "clip" and not np.any(arrays["pose"], axis=1).all():
        del arrays["pose"], arrays["shape"]  # an all-zero pose is "no SMPL" (H36M _nosmpl)
        smpl = False
        report.clips_without_smpl += 1
    report.clips += 1
    return {
        "meta": {
            "dataset": spec.name, "video": name, "start": start, "split": split, "fps": fps,
            "kind": spec.kind,
            "supervision": {"kp2d": "kp2d" in arrays, "kp3d": "kp3d" in arrays, "smpl": smpl},
            "joints3d": spec.kp3d_joints[split][1] if "kp3d" in arrays else "",
        },
        **arrays,
    }


def _warn_about(report: ConversionReport) -> None:
    if report.repeated_video_names:
        log.warning("%s: %d vid_name(s) appear in more than one run of rows; each run is its own "
                    "video (~k suffix)", report.db, len(report.repeated_video_names))
    for label, count in (("frames without a usable bbox (2D confidence set to 0)",
                          report.frames_without_bbox),
                         ("frames whose 2D keypoints lie outside their 1.2 bbox crop",
                          report.frames_keypoints_outside_crop)):
        if count:
            log.warning("%s: %d of %d %s", report.db, count, report.rows, label)
    if report.short_clips:
        log.warning("%s: %d clip(s) (%d frames) shorter than seq_len=%d: no training windows "
                    "from them (evaluation covers every frame)", report.db, report.short_clips,
                    report.short_clip_frames, report.seq_len)
