"""Reading and writing body-model files: SMPL ``.npz`` / ``.pkl`` and the SPIN extras.

A body-model *source* is either ``"mannequin"`` (the built-in procedural model, docs/body.md) or a
directory laid out like SPIN/VIBE/TCMR's ``data/base_data``::

    SMPL_NEUTRAL.npz or SMPL_NEUTRAL.pkl
    J_regressor_extra.npy      (9, 6890)
    J_regressor_h36m.npy       (17, 6890)
    smpl_mean_params.npz       pose (144,), shape (10,), cam (3,)

Official SMPL pickles hold chumpy objects and a scipy sparse matrix. They are read with a
restricted unpickler that rebuilds those as plain numpy arrays and refuses every other global, so
no pickle can run code and neither chumpy nor scipy is imported.
"""

from __future__ import annotations

import io
import pickle
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from str_lightning.body.joints import NUM_BETAS, NUM_POSE_6D, NUM_SMPL_JOINTS
from str_lightning.safe_pickle import array_global

MANNEQUIN = "mannequin"
NUM_VERTICES = 6890
NUM_FACES = 2 * NUM_VERTICES - 4  # a closed genus-0 triangle mesh: 13776

SMPL_SHAPES: dict[str, tuple[int | None, ...]] = {
    "v_template": (NUM_VERTICES, 3),
    "f": (NUM_FACES, 3),
    "kintree_table": (2, NUM_SMPL_JOINTS),
    "weights": (NUM_VERTICES, NUM_SMPL_JOINTS),
    "J_regressor": (NUM_SMPL_JOINTS, NUM_VERTICES),
    "shapedirs": (NUM_VERTICES, 3, None),  # SMPL ships 10 shape directions, SMPL+H/X 300+
    "posedirs": (NUM_VERTICES, 3, 9 * (NUM_SMPL_JOINTS - 1)),
}
EXTRA_FILES: dict[str, tuple[int, ...]] = {
    "J_regressor_extra.npy": (9, NUM_VERTICES),
    "J_regressor_h36m.npy": (17, NUM_VERTICES),
}
MEAN_PARAM_SHAPES: dict[str, tuple[int, ...]] = {"pose": (NUM_POSE_6D,), "shape": (NUM_BETAS,),
                                                 "cam": (3,)}


class BodyModelFileError(ValueError):
    """A body-model file is missing, unreadable, or holds an array of the wrong shape."""


@dataclass(frozen=True)
class BodyFiles:
    """Everything a body-model source provides, as numpy arrays."""

    smpl: dict[str, np.ndarray]
    j_regressor_extra: np.ndarray
    j_regressor_h36m: np.ndarray
    mean_params: dict[str, np.ndarray]


def load_body_directory(source: str | Path) -> BodyFiles:
    """Load a directory of SMPL files (see the module docstring)."""
    root = Path(source).expanduser()
    if not root.is_dir():
        raise BodyModelFileError(
            f"body model directory {root} does not exist; pass 'mannequin' for the built-in model "
            "or a directory with SMPL_NEUTRAL.npz|pkl, J_regressor_extra.npy, "
            "J_regressor_h36m.npy and smpl_mean_params.npz"
        )
    smpl_path = next((p for p in (root / "SMPL_NEUTRAL.npz", root / "SMPL_NEUTRAL.pkl") if p.exists()),
                     root / "SMPL_NEUTRAL.npz")
    extras = {name: _load_npy(root / name, shape) for name, shape in EXTRA_FILES.items()}
    return BodyFiles(
        smpl=load_smpl_arrays(smpl_path),
        j_regressor_extra=extras["J_regressor_extra.npy"],
        j_regressor_h36m=extras["J_regressor_h36m.npy"],
        mean_params=_load_npz(root / "smpl_mean_params.npz", MEAN_PARAM_SHAPES),
    )


def load_smpl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The SMPL arrays of a ``.npz`` or ``.pkl`` model file, shape-checked (see ``SMPL_SHAPES``)."""
    path = Path(path)
    if path.suffix == ".pkl":
        _require_file(path)
        with open(path, "rb") as fh:
            try:
                raw = _SafeSmplUnpickler(fh, encoding="latin1").load()
            except pickle.UnpicklingError as err:
                raise BodyModelFileError(f"{path}: {err}") from None
        if not isinstance(raw, dict):
            raise BodyModelFileError(f"{path}: expected a pickled dict, got {type(raw).__name__}")
        arrays = {k: _to_array(v) for k, v in raw.items() if k in SMPL_SHAPES}
        missing = sorted(set(SMPL_SHAPES) - set(arrays))
        if missing:
            raise BodyModelFileError(f"{path}: missing keys {missing}")
        _check_shapes(path, arrays, SMPL_SHAPES)
        return arrays
    return _load_npz(path, SMPL_SHAPES)


def save_smpl_npz(arrays: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write SMPL arrays to ``path`` (``.npz``) after the same shape checks as on reading."""
    path = Path(path)
    _check_shapes(path, arrays, SMPL_SHAPES)
    return write_npz(path, {k: arrays[k] for k in SMPL_SHAPES})


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Like ``np.savez_compressed`` but with fixed zip timestamps: equal arrays, equal bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
    return path


def convert_pkl_to_npz(src: str | Path, dst: str | Path) -> Path:
    """``str-lightning body convert``: a (chumpy) SMPL pickle to a plain ``.npz``."""
    return save_smpl_npz(load_smpl_arrays(src), dst)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise BodyModelFileError(f"body model file {path} does not exist")


def _load_npy(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    _require_file(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise _corrupted(path, err) from None
    _check_shapes(path, {"array": array}, {"array": shape})
    return array


def _load_npz(path: Path, shapes: dict[str, tuple[int | None, ...]]) -> dict[str, np.ndarray]:
    _require_file(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as err:  # object arrays need pickle, which we refuse
        raise BodyModelFileError(f"{path}: {err}") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
        raise _corrupted(path, err) from None
    missing = sorted(set(shapes) - set(arrays))
    if missing:
        raise BodyModelFileError(f"{path}: missing keys {missing} (has {sorted(arrays)})")
    arrays = {k: arrays[k] for k in shapes}
    _check_shapes(path, arrays, shapes)
    return arrays


def _corrupted(path: Path, err: BaseException) -> BodyModelFileError:
    return BodyModelFileError(f"{path}: not a readable numpy file ({type(err).__name__}: {err}); "
                              "the file is truncated or corrupted: copy or convert it again")


def _check_shapes(path: Path, arrays: dict[str, np.ndarray], shapes: dict) -> None:
    for key, expected in shapes.items():
        actual = tuple(np.shape(arrays[key]))
        ok = len(actual) == len(expected) and all(e is None or e == a for e, a in zip(expected, actual))
        if not ok:
            shown = tuple("*" if e is None else e for e in expected)
            raise BodyModelFileError(f"{path}: key {key!r} has shape {actual}, expected {shown}")


class _ChumpyArray:
    """Stands in for any chumpy class while unpickling; keeps the pickled state only."""

    def __setstate__(self, state: dict) -> None:
        self.state = state

    def to_numpy(self) -> np.ndarray:
        if "x" not in self.state:
            raise BodyModelFileError(f"a chumpy object without an 'x' array (keys {sorted(self.state)})")
        return np.asarray(_to_array(self.state["x"]))


class _SparseMatrix:
    """Stands in for a scipy sparse matrix (CSC or CSR); densified on conversion."""

    compressed_rows = False

    def __setstate__(self, state: dict) -> None:
        self.state = state

    def to_numpy(self) -> np.ndarray:
        s = self.state
        shape = tuple(s.get("_shape", s.get("shape")))
        data, indices, indptr = (np.asarray(s[k]) for k in ("data", "indices", "indptr"))
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        dense = np.zeros(shape if self.compressed_rows else shape[::-1], dtype=data.dtype)
        np.add.at(dense, (major, indices), data)
        return dense if self.compressed_rows else dense.T


class _CscMatrix(_SparseMatrix):
    compressed_rows = False


class _CsrMatrix(_SparseMatrix):
    compressed_rows = True


_STAND_INS = (_ChumpyArray, _CscMatrix, _CsrMatrix)


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` restricted to our stand-in classes."""
    if cls not in _STAND_INS or base is not object:
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return object.__new__(cls)


class _SafeSmplUnpickler(pickle.Unpickler):
    """Allows numpy arrays, chumpy objects (as ``_ChumpyArray``) and scipy CSC/CSR matrices
    (as ``_SparseMatrix``); every other global raises ``UnpicklingError``."""

    def find_class(self, module: str, name: str):
        found = array_global(module, name)
        if found is not None:
            return found
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyArray
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return _CscMatrix if name == "csc_matrix" else _CsrMatrix
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: body-model pickles may only hold numpy "
            "arrays, chumpy arrays and scipy sparse matrices"
        )


def _to_array(value) -> np.ndarray:
    if isinstance(value, _STAND_INS):
        return value.to_numpy()
    return np.asarray(value)
