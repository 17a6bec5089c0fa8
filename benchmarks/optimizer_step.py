"""STR's training step over the matmul peak with torch's plain and fused Adam step, side by side.

    python benchmarks/optimizer_step.py [--repeats 7] [--threads N]

The step is ``run_all.py``'s (paper dimensions, batch 32 x 16 x 2048: ``compute_losses``,
backward, Adam). The two optimizers update the same model and take turns step by step, each
step timed between two matmul-peak measurements (``run_all.interleaved_steps``), so a change in
the machine's load hits both alike. Prints, for each, the median step, the median Adam step
alone, the median FLOP/s-over-peak ratio (``train_str_flops_over_matmul_peak``) and the median
CPU time of the process per step (which other jobs on the machine inflate far less than the
wall time; with ``--threads 1`` on an idle machine the two agree).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_all import BATCH, FEATURE_DIM, build_module, interleaved_steps, random_train_batch

from str_lightning.nets import STREncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    module = build_module(STREncoder, device)
    batch = random_train_batch(BATCH, FEATURE_DIM, device)
    params = module.generator_parameters()
    optimizers = {"plain": torch.optim.Adam(params, lr=5e-5),
                  "fused": torch.optim.Adam(params, lr=5e-5, fused=True)}
    adam_s: dict[str, list[float]] = {name: [] for name in optimizers}
    cpu_s: dict[str, list[float]] = {name: [] for name in optimizers}

    def step(name: str) -> None:
        optimizer = optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        started = time.process_time()
        terms, _ = module.compute_losses(batch)
        terms["total"].backward()
        before_adam = time.perf_counter()
        optimizer.step()
        adam_s[name].append(time.perf_counter() - before_adam)
        cpu_s[name].append(time.process_time() - started)

    with FlopCounterMode(display=False) as counter:
        step("plain")
    step("fused")
    flops = counter.get_total_flops()
    for times in (*adam_s.values(), *cpu_s.values()):
        times.clear()
    runs = {name: [] for name in optimizers}
    for _ in range(args.repeats):
        for name in optimizers:
            runs[name].append(interleaved_steps(lambda name=name: step(name), device, 1))
    print(f"STR training step, {flops / 1e9:.0f} GFLOP, {args.threads} thread(s), "
          f"medians of {args.repeats} steps each:")
    print("| Adam step | step s | Adam s | GFLOP/s | matmul peak GFLOP/s | ratio | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for name, measurements in runs.items():
        step_s = [m.step_s[0] for m in measurements]
        peak = [m.peak[0] for m in measurements]
        ratios = [flops / s / p for s, p in zip(step_s, peak)]
        print(f"| {name} | {statistics.median(step_s):.2f} | {statistics.median(adam_s[name]):.3f} "
              f"| {flops / statistics.median(step_s) / 1e9:.1f} | {statistics.median(peak) / 1e9:.1f} "
              f"| {statistics.median(ratios):.3f} | {statistics.median(cpu_s[name]):.2f} |")


if __name__ == "__main__":
    main()
