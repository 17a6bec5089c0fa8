"""Finding a run's checkpoints: ``--ckpt_path auto`` and ``--ckpt_path best``.

A run directory holds Lightning's SLURM requeue checkpoints ``hpc_ckpt_<n>.ckpt`` at its top, and
``checkpoints/`` with the periodic, ``last`` and on-exception checkpoints. "Newest" means the
highest stored ``global_step`` (file times are unreliable on shared file systems and across
requeues). Checkpoints are read with ``torch.load(weights_only=True, mmap=True)``: no arbitrary
unpickling, and only the small metadata is actually read from disk.
"""

from __future__ import annotations

from pathlib import Path

import torch

AUTO = "auto"
BEST = "best"


def run_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every checkpoint of a run: ``hpc_ckpt_*.ckpt`` and ``checkpoints/**/*.ckpt``."""
    run_dir = Path(run_dir)
    found = list(run_dir.glob("hpc_ckpt_*.ckpt")) + list((run_dir / "checkpoints").rglob("*.ckpt"))
    return sorted(p for p in found if p.is_file())


def read_checkpoint_meta(path: str | Path) -> dict:
    """``global_step``, ``epoch`` and the callback states of a checkpoint, without its tensors."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return {
        "global_step": int(checkpoint.get("global_step", -1)),
        "epoch": int(checkpoint.get("epoch", -1)),
        "callbacks": checkpoint.get("callbacks", {}),
    }


def newest_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's checkpoint with the highest ``global_step`` (ties: the hpc checkpoint, then the
    latest file name), or None when the run has none yet."""
    ranked = []
    for path in run_checkpoints(run_dir):
        try:
            step = read_checkpoint_meta(path)["global_step"]
        except (RuntimeError, EOFError, OSError, ValueError):  # unreadable: never resume from it
            continue
        ranked.append((step, path.name.startswith("hpc_ckpt_"), path.name, path))
    return max(ranked)[-1] if ranked else None


def best_checkpoint(run_dir: str | Path) -> Path:
    """The best checkpoint recorded by the run's ModelCheckpoint (read from its newest
    checkpoint's callback state). Raises FileNotFoundError with what to do otherwise."""
    newest = newest_checkpoint(run_dir)
    if newest is None:
        raise FileNotFoundError(f"--ckpt_path best: no checkpoint in {run_dir}; train first "
                                "(str-lightning fit) or pass a checkpoint file")
    for key, state in read_checkpoint_meta(newest)["callbacks"].items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_path"):
            best = Path(state["best_model_path"])
            if best.is_file():
                return best
    raise FileNotFoundError(f"--ckpt_path best: {newest} records no existing best checkpoint "
                            "(is a ModelCheckpoint with a monitor configured?)")


def resolve_ckpt_path(ckpt_path: str | None, run_dir: str | Path) -> str | None:
    """``auto`` -> the newest checkpoint of the run or None (fresh start); ``best`` -> the best
    one; anything else unchanged."""
    if ckpt_path == AUTO:
        newest = newest_checkpoint(run_dir)
        return str(newest) if newest else None
    if ckpt_path == BEST:
        return str(best_checkpoint(run_dir))
    return ckpt_path
