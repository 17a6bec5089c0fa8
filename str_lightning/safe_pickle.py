"""The globals every restricted unpickler of ours may resolve: numpy's array rebuilders.

Body-model pickles (str_lightning/body/model_files.py) and TCMR's and VIBE's joblib db files
(datamodules/converters/safe_joblib.py) each add their own stand-ins on top of this allow-list
and refuse everything else, so no pickle we read can run code. Released ``.pth.tar`` checkpoints
go through ``torch.load(weights_only=True)`` with just the numpy-scalar part of it
(:func:`load_torch_file`).
"""

from __future__ import annotations

import codecs
import os
from typing import Any

import numpy as np

# Scalar types a released checkpoint stores as metadata (``performance``, ``epoch``).
NUMPY_SCALAR_DTYPES = ("bool", "int32", "int64", "float16", "float32", "float64")
_MULTIARRAY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


def array_global(module: str, name: str) -> Any | None:
    """The object a pickle may name to rebuild numpy arrays, dtypes, scalars or bytes, else None.

    numpy 1.x pickles say ``numpy.core.multiarray``, numpy 2 writes ``numpy._core.multiarray``;
    both resolve to the installed numpy's module. Protocol-2 pickles store bytes through
    ``_codecs.encode``.
    """
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    if module in _MULTIARRAY_MODULES and name in ("_reconstruct", "scalar"):
        try:
            from numpy._core import multiarray  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray
        return getattr(multiarray, name)
    if module == "_codecs" and name == "encode":
        return codecs.encode
    return None


def numpy_scalar_globals() -> list[Any]:
    """What a pickled numpy scalar names, for ``torch.serialization.safe_globals``.

    A scalar pickles as ``multiarray.scalar(dtype, bytes)`` and its dtype as ``numpy.dtype``
    plus a ``BUILD`` on the dtype instance, whose class (e.g. ``Float64DType``) must be allowed
    too. ``scalar`` is listed under both numpy 1.x and 2.x module names; the dtype classes only
    for :data:`NUMPY_SCALAR_DTYPES`. Arrays (``_reconstruct``, ``ndarray``) stay refused.
    """
    scalar = array_global(_MULTIARRAY_MODULES[1], "scalar")
    entries: list[Any] = [(scalar, f"{module}.scalar") for module in _MULTIARRAY_MODULES]
    return [*entries, np.dtype, *(type(np.dtype(name)) for name in NUMPY_SCALAR_DTYPES)]


def load_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU that also accepts numpy scalars.

    The allowance is scoped to this call (a ``safe_globals`` context), so every other
    ``torch.load`` of the process stays as strict as torch's default.
    """
    import torch

    with torch.serialization.safe_globals(numpy_scalar_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)
