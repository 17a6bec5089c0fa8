"""Validation: a clip, its meta, and the properties every clip of a split directory shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datamodules.schema.errors import ClipError
from str_lightning.body.joints import NUM_BETAS, NUM_POSE_PARAMS, NUM_SPIN_JOINTS, joint_names

KINDS = ("clip", "motion")
FEATURE_DTYPES = ("float16", "float32")
SUPERVISION_FLAGS = ("kp2d", "kp3d", "smpl")

# name -> (allowed dtypes, shape with symbols: L frames, D feature dim, J joints of meta.joints3d)
ARRAY_MEMBERS: dict[str, tuple[tuple[str, ...], tuple[int | str, ...]]] = {
    "features": (FEATURE_DTYPES, ("L", "D")),
    "kp2d": (("float32",), ("L", NUM_SPIN_JOINTS, 3)),
    "kp3d": (("float32",), ("L", "J", 3)),
    "pose": (("float32",), ("L", NUM_POSE_PARAMS)),
    "shape": (("float32",), ("L", NUM_BETAS)),
    "valid": (("uint8",), ("L",)),
    "frame_id": (("int64",), ("L",)),
    "bbox": (("float32",), ("L", 4)),
}
META_FIELDS: dict[str, type | tuple[type, ...]] = {
    "dataset": str, "video": str, "start": int, "split": str, "fps": (int, float), "kind": str,
    "supervision": dict, "joints3d": str,
}


def required_members(meta: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """``(required, optional)`` array members of a clip with this (valid) ``meta``."""
    required = {"valid", "frame_id"}
    optional = {"bbox"}
    if meta["kind"] == "clip":
        required |= {"features", "kp2d"}
    else:
        optional.add("kp2d")
    if meta["supervision"]["kp3d"]:
        required.add("kp3d")
    if meta["supervision"]["smpl"] or meta["kind"] == "motion":
        required |= {"pose", "shape"}
    return required, optional


def validate_meta(meta: Any, where: str) -> None:
    """Check the ``meta`` member: field names, types and allowed values."""
    def fail(name: str, expected: str, actual: Any) -> ClipError:
        return ClipError(f"{where}: meta.{name}: expected {expected}, got {actual!r}")

    if not isinstance(meta, dict):
        raise fail("json", "an object", type(meta).__name__)
    for name, types in META_FIELDS.items():
        if name not in meta:
            raise ClipError(f"{where}: meta: missing field {name!r} (required: {list(META_FIELDS)})")
        value = meta[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise fail(name, f"type {getattr(types, '__name__', types)}", value)
    if meta["kind"] not in KINDS:
        raise fail("kind", f"one of {KINDS}", meta["kind"])
    if meta["start"] < 0 or not meta["video"] or not meta["fps"] > 0:
        raise fail("start/video/fps", "start >= 0, a non-empty video, fps > 0",
                   (meta["start"], meta["video"], meta["fps"]))
    supervision = meta["supervision"]
    if sorted(supervision) != sorted(SUPERVISION_FLAGS) or not all(
            isinstance(v, bool) for v in supervision.values()):
        raise fail("supervision", f"booleans for exactly {SUPERVISION_FLAGS}", supervision)
    if meta["kind"] == "motion" and supervision["kp2d"]:
        raise fail("supervision.kp2d", "false for kind 'motion'", True)
    if supervision["kp3d"]:
        try:
            joint_names(meta["joints3d"])
        except KeyError as err:
            raise fail("joints3d", "a joint-set name (kp3d is supervised)", meta["joints3d"]) from err
    elif meta["joints3d"]:
        raise fail("joints3d", "'' when kp3d is not supervised", meta["joints3d"])


def validate_clip(clip: Mapping[str, Any], where: str, feature_dim: int | None = None) -> int:
    """Check a clip against the schema and return its frame count L.

    ``where`` starts every error message (e.g. "shard train-000000.tar, sample k"). Checks: the
    meta fields, the exact set of members (required/optional from the meta), each array's dtype
    and shape (L from ``valid``, D from ``feature_dim`` when given, J from ``meta.joints3d``), L >= 1,
    ``valid`` in {0, 1} and every float array finite.
    """
    meta = clip.get("meta")
    if meta is None:
        raise ClipError(f"{where}: missing member 'meta'")
    validate_meta(meta, where)
    arrays = {k: v for k, v in clip.items() if k != "meta" and not k.startswith("__")}
    required, optional = required_members(meta)
    missing = sorted(required - arrays.keys())
    if missing:
        raise ClipError(f"{where}: missing member(s) {missing} (required for kind "
                        f"{meta['kind']!r}, supervision {meta['supervision']})")
    unexpected = sorted(arrays.keys() - required - optional)
    if unexpected:
        raise ClipError(f"{where}: unexpected member(s) {unexpected}; allowed here: "
                        f"{sorted(required | optional)}")
    valid = arrays["valid"]
    if not isinstance(valid, np.ndarray) or valid.ndim != 1 or len(valid) == 0:
        raise ClipError(f"{where}: member 'valid': expected a non-empty 1-D array, got "
                        f"{getattr(valid, 'shape', type(valid).__name__)}")
    sizes = {"L": len(valid), "D": feature_dim,
             "J": len(joint_names(meta["joints3d"])) if meta["joints3d"] else None}
    for name, array in arrays.items():
        _check_array(name, array, sizes, where)
    if not np.isin(valid, (0, 1)).all():
        raise ClipError(f"{where}: member 'valid': expected values in {{0, 1}}, got "
                        f"{np.unique(valid)[:8].tolist()}")
    return sizes["L"]


def _check_array(name: str, array: Any, sizes: dict[str, int | None], where: str) -> None:
    dtypes, symbolic = ARRAY_MEMBERS[name]
    if not isinstance(array, np.ndarray):
        raise ClipError(f"{where}: member {name!r}: expected a numpy array, got "
                        f"{type(array).__name__}")
    if array.dtype.name not in dtypes:
        raise ClipError(f"{where}: member {name!r}: expected dtype {' or '.join(dtypes)}, got "
                        f"{array.dtype.name}")
    expected = tuple(sizes[d] if isinstance(d, str) else d for d in symbolic)
    matches = array.ndim == len(expected) and all(
        e is None or e == a for e, a in zip(expected, array.shape))
    if not matches:
        raise ClipError(f"{where}: member {name!r}: expected shape "
                        f"{_shape_text(symbolic, sizes)}, got {tuple(array.shape)}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ClipError(f"{where}: member {name!r}: expected finite values, got {bad} NaN/Inf")


def _shape_text(shape: tuple[int | str, ...], sizes: dict[str, int | None]) -> str:
    parts = [f"{d}={sizes[d]}" if isinstance(d, str) and sizes[d] is not None else str(d)
             for d in shape]
    return "(" + ", ".join(parts) + ")"


class SplitProperties:
    """Dataset-level properties every clip of one split directory must share."""

    def __init__(self, dataset: str | None = None, split: str | None = None) -> None:
        self.values: dict[str, Any] = {"dataset": dataset, "split": split, "kind": None,
                                       "feature_dim": None, "feature_dtype": None, "joints3d": ""}

    def update(self, clip: Mapping[str, Any], where: str) -> None:
        meta = clip["meta"]
        seen = {"dataset": meta["dataset"], "split": meta["split"], "kind": meta["kind"]}
        if "features" in clip:
            seen["feature_dim"] = clip["features"].shape[1]
            seen["feature_dtype"] = clip["features"].dtype.name
        if meta["joints3d"]:
            seen["joints3d"] = meta["joints3d"]
        for name, value in seen.items():
            current = self.values[name]
            if current is None or current == "":
                self.values[name] = value
            elif current != value:
                raise ClipError(f"{where}: {name}: expected {current!r} (as every clip of this "
                                f"split directory), got {value!r}")

