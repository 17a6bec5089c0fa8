"""Read joblib ``.pt`` files (TCMR/VIBE db files) without running any code from them.

``joblib.dump`` writes an ordinary pickle stream in which every numpy array is replaced by a
``joblib.numpy_pickle.NumpyArrayWrapper`` (subclass, shape, order, dtype and, since joblib 1.2,
``numpy_array_alignment_bytes``). The raw array bytes follow the wrapper's BUILD opcode in the
file: one byte giving a padding length ``p`` and ``p`` padding bytes (only when the wrapper has an
alignment attribute that is not None), then ``prod(shape) * itemsize`` bytes in the wrapper's
order. Object arrays are instead written as a nested pickle stream at that point.

We read that format ourselves instead of calling ``joblib.load`` (or subclassing its unpickler):
it needs about one page of code, joblib is then only a test dependency, and the unpickler below
is the whole attack surface. It allows numpy arrays, dtypes and scalars, builtin containers and
strings, and a stand-in for joblib's array wrapper; every other global (``os.system``, ``eval``,
any class) raises ``UnsafePickleError``. Compressed joblib files and the pre-0.10 joblib format
are refused with a clear error.

Python's pure-Python unpickler (``pickle._Unpickler``) is used because it reads the file
exactly as far as the pickle stream goes; the C unpickler may buffer past the wrapper and swallow
the array bytes. joblib itself relies on the same property.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from str_lightning.safe_pickle import array_global

# The first bytes of the files joblib's compressors write (zlib, gzip, bz2, xz, lzma, lz4) and of
# the pre-0.10 joblib format ("ZF"). An uncompressed pickle of protocol >= 2 starts with PROTO.
_COMPRESSED_PREFIXES = {
    b"\x78": "zlib", b"\x1f\x8b": "gzip", b"BZ": "bz2", b"\xfd7zXZ": "xz", b"]\x00\x00": "lzma",
    b"\x04\x22\x4d\x18": "lz4", b"ZF": "joblib < 0.10",
}
_READ_CHUNK_BYTES = 64 * 1024 * 1024


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for something other than numpy arrays and builtin containers."""


class JoblibFormatError(ValueError):
    """The file is not an uncompressed joblib pickle we can read (or it is truncated)."""


class _ArrayWrapper:
    """Stands in for ``joblib.numpy_pickle.NumpyArrayWrapper``; keeps its pickled state."""

    _KEYS = frozenset(
        {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"})

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not set(state) <= self._KEYS:
            raise JoblibFormatError(f"unexpected NumpyArrayWrapper state {state!r}")
        self.state = state

    def read_array(self, unpickler: _RestrictedUnpickler) -> np.ndarray:
        shape, order, dtype = (self.state.get(k) for k in ("shape", "order", "dtype"))
        valid_shape = isinstance(shape, tuple) and all(
            isinstance(n, int) and n >= 0 for n in shape
        )
        if not (valid_shape and order in ("C", "F") and isinstance(dtype, np.dtype)):
            raise JoblibFormatError(f"bad array header shape={shape!r} order={order!r} "
                                    f"dtype={dtype!r}")
        if self.state.get("subclass", np.ndarray) is not np.ndarray:
            raise UnsafePickleError(f"refusing array subclass {self.state['subclass']!r}")
        if dtype.hasobject:
            return unpickler.load_nested_object_array(shape)
        if self.state.get("numpy_array_alignment_bytes") is not None:
            padding = unpickler.read_exactly(1)[0]
            unpickler.read_exactly(padding)
        count = int(np.prod(shape, dtype=np.int64))
        flat = np.empty(count, dtype=dtype)
        unpickler.read_into(memoryview(flat).cast("B"))
        if order == "F":
            return flat.reshape(shape[::-1]).transpose()
        return flat.reshape(shape)


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickles a joblib stream, replacing each array wrapper by the array that follows it."""

    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file)
        self.raw_file = file
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        found = array_global(module, name)
        if found is not None:
            return found
        if module == "joblib.numpy_pickle" and name == "NumpyArrayWrapper":
            return _ArrayWrapper
        raise UnsafePickleError(
            f"{self.path}: refusing to load global {module}.{name}; a db file may only hold "
            "numpy arrays, numpy scalars and builtin containers/strings"
        )

    def load_build_with_arrays(self) -> None:
        self.load_build()
        if isinstance(self.stack[-1], _ArrayWrapper):
            self.stack.append(self.stack.pop().read_array(self))

    dispatch[pickle.BUILD[0]] = load_build_with_arrays

    def read_exactly(self, size: int) -> bytes:
        data = self.raw_file.read(size)
        if len(data) != size:
            raise JoblibFormatError(f"{self.path}: truncated file (array data ends early)")
        return data

    def read_into(self, buffer: memoryview) -> None:
        done = 0
        while done < len(buffer):
            got = self.raw_file.readinto(buffer[done:done + _READ_CHUNK_BYTES])
            if not got:
                raise JoblibFormatError(f"{self.path}: truncated file (array data ends early)")
            done += got

    def load_nested_object_array(self, shape: tuple[int, ...]) -> np.ndarray:
        array = _RestrictedUnpickler(self.raw_file, self.path).load()
        if not isinstance(array, np.ndarray) or array.shape != shape:
            raise JoblibFormatError(f"{self.path}: object array does not match shape {shape}")
        return array


def load_joblib_pickle(path: str | Path) -> Any:
    """The object stored in an uncompressed ``joblib.dump`` file, read with the allow-list above.

    Raises ``UnsafePickleError`` for any disallowed global and ``JoblibFormatError`` for
    compressed, pre-0.10 or truncated files.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        for prefix, kind in _COMPRESSED_PREFIXES.items():
            if head.startswith(prefix):
                raise JoblibFormatError(
                    f"{path}: looks like a {kind}-compressed joblib file; only uncompressed joblib "
                    "files (as TCMR/VIBE write them) are supported. Re-save it uncompressed with "
                    "joblib.dump(obj, file) on a machine where you trust the file."
                )
        if not head.startswith(pickle.PROTO):
            raise JoblibFormatError(f"{path}: not a joblib/pickle file (starts with {head!r})")
        fh.seek(0)
        try:
            return _RestrictedUnpickler(fh, path).load()
        except EOFError:
            raise JoblibFormatError(f"{path}: truncated file") from None
