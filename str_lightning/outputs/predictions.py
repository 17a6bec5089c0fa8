"""Prediction files: one ``.npz`` per sequence, readable with numpy alone (docs/predictions.md).

Every member is a plain numpy array (no pickles: ``np.load(path)`` with its default
``allow_pickle=False`` reads it); strings are 0-d numpy unicode arrays and scalars 0-d arrays.
Per-frame arrays have N rows, frame ``i`` at row ``i``:

============== ========== ===================================================================
key            shape      contents
============== ========== ===================================================================
pose           (N, 72)    SMPL pose, axis-angle, global orientation first (float32)
betas          (N, 10)    SMPL shape (float32)
cam            (N, 3)     crop camera ``(s, tx, ty)`` (float32)
joints_spin49  (N, 49, 3) the spin49 joints of the posed body, metres, model frame (float32)
joints_h36m17  (N, 17, 3) ``J_regressor_h36m`` on the posed mesh (the evaluation joints)
vertices       (N, V, 3)  the posed mesh, only when the writer was asked for it (float32)
frame_id       (N,)       frame indices in the video (int64)
fps            ()         frame rate of the sequence (float64)
dataset        ()         the ``predict_datasets`` name (str)
sequence       ()         the sequence (sample) key (str)
model          ()         class path of the LightningModule (str)
encoder        ()         class path of its temporal encoder (str)
body_model     ()         the body model it regresses: "mannequin" or a directory (str)
checkpoint     ()         the checkpoint the weights came from, "" if none (str)
format_version ()         :data:`FORMAT_VERSION` (int64)
============== ========== ===================================================================
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from str_lightning.body.joints import NUM_BETAS, NUM_POSE_PARAMS, NUM_SPIN_JOINTS
from str_lightning.runs.checkpoints import NEW_FILE_MODE

FORMAT_VERSION = 1
FRAME_ARRAYS: dict[str, tuple[int, ...]] = {
    "pose": (NUM_POSE_PARAMS,), "betas": (NUM_BETAS,), "cam": (3,), "joints_spin49": (NUM_SPIN_JOINTS, 3),
    "joints_h36m17": (17, 3), "frame_id": (),
}
OPTIONAL_FRAME_ARRAYS: dict[str, tuple[int | None, ...]] = {"vertices": (None, 3)}
STRING_FIELDS = ("dataset", "sequence", "model", "encoder", "body_model", "checkpoint")
SCALAR_FIELDS = ("fps", "format_version")


class PredictionFileError(ValueError):
    """A prediction file that is missing a member or has one of the wrong shape."""


def prediction_arrays(frames: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The members of one prediction file.

    ``frames``: the per-frame arrays (:data:`FRAME_ARRAYS`, optionally ``vertices``);
    ``fields``: the strings of :data:`STRING_FIELDS` and ``fps``.
    """
    arrays = {name: np.asarray(value) for name, value in frames.items()}
    arrays["frame_id"] = arrays["frame_id"].astype(np.int64)
    arrays.update({name: np.asarray(str(fields[name])) for name in STRING_FIELDS})
    arrays["fps"] = np.asarray(float(fields["fps"]), dtype=np.float64)
    arrays["format_version"] = np.asarray(FORMAT_VERSION, dtype=np.int64)
    check_prediction_arrays(arrays, "prediction_arrays")
    return arrays


def write_prediction_file(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` atomically: a temporary file in the same directory, then
    ``os.replace``, so a reader never sees a partial file and a rerun overwrites cleanly; the
    file gets the mode of any new file (``0666`` less the umask), like checkpoints."""
    path = Path(path)
    check_prediction_arrays(arrays, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False) as handle:
            temporary = Path(handle.name)
            os.fchmod(handle.fileno(), NEW_FILE_MODE)
            np.savez(handle, **arrays)
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return path


def read_prediction_file(path: str | Path) -> dict[str, np.ndarray]:
    """The members of a prediction file, checked (:class:`PredictionFileError` otherwise)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    check_prediction_arrays(arrays, str(path))
    return arrays


def check_prediction_arrays(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Every required member present, per-frame arrays with one row per frame, no objects."""
    required = [*FRAME_ARRAYS, *STRING_FIELDS, *SCALAR_FIELDS]
    missing = [name for name in required if name not in arrays]
    if missing:
        raise PredictionFileError(f"{where}: missing member(s) {missing}; a prediction file "
                                  f"(format {FORMAT_VERSION}) has {required}")
    version = int(arrays["format_version"])
    if version != FORMAT_VERSION:
        raise PredictionFileError(f"{where}: format_version {version}, this version of "
                                  f"str-lightning reads {FORMAT_VERSION}")
    frames = len(arrays["frame_id"])
    expected = {**FRAME_ARRAYS, **{k: v for k, v in OPTIONAL_FRAME_ARRAYS.items() if k in arrays}}
    for name, tail in expected.items():
        shape = arrays[name].shape
        if len(shape) != 1 + len(tail) or shape[0] != frames or any(
                want is not None and want != got for want, got in zip(tail, shape[1:])):
            wanted = ", ".join(["N", *("V" if t is None else str(t) for t in tail)])
            raise PredictionFileError(f"{where}: member {name!r}: expected shape ({wanted}) "
                                      f"with N = {frames} frames, got {shape}")
    for name, value in arrays.items():
        if value.dtype.kind == "O":
            raise PredictionFileError(f"{where}: member {name!r} is an object array; prediction "
                                      f"files hold plain arrays only")
