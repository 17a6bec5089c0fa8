"""The globals every restricted unpickler of ours may resolve: numpy's array rebuilders.

Body-model pickles (str_lightning/body/model_files.py) and the peers' joblib db files
(datamodules/converters/safe_joblib.py) each add their own stand-ins on top of this allow-list
and refuse everything else, so no pickle we read can run code.
"""

from __future__ import annotations

import codecs
from typing import Any

import numpy as np


def array_global(module: str, name: str) -> Any | None:
    """The object a pickle may name to rebuild numpy arrays, dtypes, scalars or bytes, else None.

    numpy 1.x pickles say ``numpy.core.multiarray``, numpy 2 writes ``numpy._core.multiarray``;
    both resolve to the installed numpy's module. Protocol-2 pickles store bytes through
    ``_codecs.encode``.
    """
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
        "_reconstruct", "scalar",
    ):
        try:
            from numpy._core import multiarray  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray
        return getattr(multiarray, name)
    if module == "_codecs" and name == "encode":
        return codecs.encode
    return None
