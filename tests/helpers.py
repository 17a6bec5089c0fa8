"""Small builders shared by several test modules."""

from pathlib import Path

import numpy as np

from str_lightning.body.model_files import SMPL_SHAPES, save_smpl_npz


def small_smpl_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays with the exact SMPL file layout (10 shape directions)."""
    rng = np.random.default_rng(seed)
    shapes = {k: tuple(10 if d is None else d for d in v) for k, v in SMPL_SHAPES.items()}
    arrays = {k: rng.standard_normal(s) for k, s in shapes.items()}
    arrays["f"] = rng.integers(0, 6890, size=shapes["f"]).astype(np.uint32)
    arrays["kintree_table"] = np.array([[4294967295] + list(range(23)), list(range(24))], np.int64)
    return arrays


def write_random_body_dir(root: Path, seed: int = 7) -> Path:
    """A random but well-formed body model directory (SMPL layout, convex skinning weights and
    regressors, small shape and pose directions), for code that does not care which body."""
    rng = np.random.default_rng(seed)
    arrays = small_smpl_arrays(seed)
    arrays["weights"] = rng.dirichlet(np.ones(24), size=6890)
    arrays["J_regressor"] = rng.dirichlet(np.ones(6890), size=24)
    arrays["shapedirs"] *= 0.01
    arrays["posedirs"] *= 0.001
    save_smpl_npz(arrays, root / "SMPL_NEUTRAL.npz")
    np.save(root / "J_regressor_extra.npy", rng.dirichlet(np.ones(6890), size=9))
    np.save(root / "J_regressor_h36m.npy", rng.dirichlet(np.ones(6890), size=17))
    np.savez(root / "smpl_mean_params.npz", pose=rng.standard_normal(144),
             shape=rng.standard_normal(10), cam=np.array([0.9, 0.0, 0.0]))
    return root


def recipes(configs: Path) -> list[tuple[Path, ...]]:
    """Every recipe of ``configs``, as the files given in order (``--config A --config B``):
    each file of experiment/; each benchmark file of ablations/ (Table 2's full model), alone and
    followed by each row of ablations/rows/ (one STR component off)."""
    benchmarks = sorted(configs.glob("ablations/*.yaml"))
    rows = sorted(configs.glob("ablations/rows/*.yaml"))
    return [*((path,) for path in sorted(configs.glob("experiment/*.yaml"))),
            *(recipe for benchmark in benchmarks
              for recipe in [(benchmark,), *((benchmark, row) for row in rows)])]
