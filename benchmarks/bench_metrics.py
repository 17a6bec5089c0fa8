"""Speed of the evaluation code, measured in one process (figures go into docs/benchmarks.md).

1. PA-MPJPE: the batched torchmetrics class over 100k frames x 14 joints against a per-frame
   numpy loop (numpy SVD per frame, the way TCMR/VIBE-era code computes it). Target >= 20x.
2. Whole-sequence inference: ``predict_sequence`` (batched windows) against feeding the same
   windows one at a time, with a small TCMR-like encoder. Target >= 5x.

Run: ``python benchmarks/bench_metrics.py`` (``--frames`` and ``--sequence-length`` shrink it).
Torch runs on one thread by default (``--threads``), like the numpy loop, so the ratio compares
the methods core for core and does not swing with the load of a shared machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from str_lightning.evaluation.inference import middle_window_indices, predict_sequence
from str_lightning.evaluation.metrics import PAMPJPE
from str_lightning.nets import TCMREncoder


def best_time(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Fastest wall time of ``repeats`` runs and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def numpy_pa_mpjpe(pred: np.ndarray, target: np.ndarray) -> float:
    """PA-MPJPE in mm with one SVD per frame in a Python loop."""
    total = 0.0
    for x, y in zip(pred.astype(np.float64), target.astype(np.float64)):
        xc, yc = x - x.mean(0), y - y.mean(0)
        u, sigma, vt = np.linalg.svd(xc.T @ yc)
        sign = np.sign(np.linalg.det(vt.T @ u.T))
        signs = np.array([1.0, 1.0, sign])
        rotation = vt.T @ np.diag(signs) @ u.T
        scale = (sigma * signs).sum() / (xc * xc).sum()
        aligned = scale * xc @ rotation.T + y.mean(0)
        total += np.linalg.norm(aligned - y, axis=-1).mean()
    return 1000 * total / len(pred)


def torchmetrics_pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> float:
    metric = PAMPJPE()
    metric.update(pred, target)
    return metric.compute().item()


def report(name: str, ratio: float, op: str, target: float) -> bool:
    """Print ``RATIO <name> <value> target <op> <target> OK|MISS``; True when the target is met."""
    met = {">=": ratio >= target, "<=": ratio <= target, "<": ratio < target}[op]
    print(f"RATIO {name} {ratio:.3g} target {op} {target:g} {'OK' if met else 'MISS'}", flush=True)
    return met


def bench_pa_mpjpe(num_frames: int) -> dict[str, float]:
    """Times of ``PAMPJPE`` and the numpy loop on the same random frames (they must agree)."""
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(num_frames, 14, 3, generator=gen)
    pred = target + 0.1 * torch.randn(num_frames, 14, 3, generator=gen)
    batched_s, batched = best_time(lambda: torchmetrics_pa_mpjpe(pred, target), repeats=3)
    loop_s, looped = best_time(lambda: numpy_pa_mpjpe(pred.numpy(), target.numpy()), repeats=1)
    if abs(batched - looped) > 1e-4:
        raise RuntimeError(f"PA-MPJPE disagrees: batched {batched} mm, numpy loop {looped} mm")
    print(f"pa_mpjpe frames={num_frames} joints=14 value={batched:.4f}mm "
          f"batched={batched_s:.3f}s numpy_loop={loop_s:.3f}s")
    return {"frames": num_frames, "batched_s": batched_s, "loop_s": loop_s,
            "ratio": loop_s / batched_s}


def window_by_window(encoder: TCMREncoder, regress: torch.nn.Module,
                     features: torch.Tensor) -> torch.Tensor:
    index = middle_window_indices(features.shape[0], encoder.seq_len)
    with torch.no_grad():
        rows = [regress(encoder(features[window][None], train=False).features) for window in index]
    return torch.cat(rows)


def bench_inference(num_frames: int) -> dict[str, float]:
    """Times of ``predict_sequence`` and the window-by-window loop (they must agree)."""
    torch.manual_seed(0)
    feature_dim, seq_len = 64, 16
    encoder = TCMREncoder(feature_dim, seq_len, hidden_size=64, num_layers=2,
                          attention_hidden_size=32).eval()
    regress = torch.nn.Linear(feature_dim, 85).eval()
    features = torch.randn(num_frames, feature_dim)
    batched_s, batched = best_time(
        lambda: predict_sequence(encoder, regress, features, batch_size=128), repeats=3)
    loop_s, looped = best_time(lambda: window_by_window(encoder, regress, features), repeats=1)
    torch.testing.assert_close(batched, looped, rtol=1e-4, atol=1e-5)
    print(f"inference frames={num_frames} T={seq_len} D={feature_dim} tcmr(hidden=64) "
          f"batched={batched_s:.3f}s window_by_window={loop_s:.3f}s")
    return {"frames": num_frames, "batched_s": batched_s, "loop_s": loop_s,
            "ratio": loop_s / batched_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames for PA-MPJPE")
    parser.add_argument("--sequence-length", type=int, default=2000, help="frames for inference")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}")
    report("pa_mpjpe_batched_vs_numpy_loop", bench_pa_mpjpe(args.frames)["ratio"], ">=", 20)
    report("inference_batched_vs_window_loop", bench_inference(args.sequence_length)["ratio"],
           ">=", 5)


if __name__ == "__main__":
    main()
