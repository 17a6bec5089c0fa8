"""Small builders shared by several test modules."""

import numpy as np

from str_lightning.body.model_files import SMPL_SHAPES


def small_smpl_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays with the exact SMPL file layout (10 shape directions)."""
    rng = np.random.default_rng(seed)
    shapes = {k: tuple(10 if d is None else d for d in v) for k, v in SMPL_SHAPES.items()}
    arrays = {k: rng.standard_normal(s) for k, s in shapes.items()}
    arrays["f"] = rng.integers(0, 6890, size=shapes["f"]).astype(np.uint32)
    arrays["kintree_table"] = np.array([[4294967295] + list(range(23)), list(range(24))], np.int64)
    return arrays
