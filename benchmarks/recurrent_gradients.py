"""Training steps with torch's GRU backward and with the batched recurrent weight gradients.

    python benchmarks/recurrent_gradients.py [--repeats 7] [--threads N] [--encoders STR ...]

The step is ``run_all.py``'s (paper dimensions, batch 32 x 16 x 2048: ``compute_losses``,
backward, fused Adam) for STR, TCMR-like and VIBE-like. For each encoder two models built from
the same seed take turns step by step: one with ``GRU.batched_weight_gradients`` off (torch's
``nn.GRU`` backward, step by step) and one with it on (the default), each step timed between
two matmul-peak measurements (``run_all.interleaved_steps``). Prints, per encoder and setting,
the median step, the median FLOP/s-over-peak ratio (``train_*_flops_over_matmul_peak``) and
the calls and self CPU share of the non-matmul operations the batched gradients remove
(``aten::cat``, ``add``, ``add_``) and of the matrix products, from one profiled step after
a warm-up step (``run_all.self_cpu_profile``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_all import (
    BATCH,
    FEATURE_DIM,
    VARIANTS,
    build_module,
    interleaved_steps,
    optimizer_step,
    random_train_batch,
    self_cpu_profile,
)

from str_lightning.nets.gru import GRU

SETTINGS = {"torch's GRU backward": False, "batched weight gradients": True}
COUNTED_OPS = ("aten::cat", "aten::add", "aten::add_")
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm")


def with_batched_gradients(module: torch.nn.Module, batched: bool) -> torch.nn.Module:
    for layer in module.modules():
        if isinstance(layer, GRU):
            layer.batched_weight_gradients = batched
    return module


def operation_shares(step) -> str:
    """Calls and self-CPU share of the counted and the matmul operations in one ``step``."""
    events, total = self_cpu_profile(step)
    by_key = {event.key: event for event in events}
    share = {key: by_key[key].self_cpu_time_total / total if key in by_key else 0.0
             for key in (*COUNTED_OPS, *MATMUL_OPS)}
    counted = ", ".join(f"{key.removeprefix('aten::')} {by_key[key].count if key in by_key else 0}"
                        f" ({100 * share[key]:.1f} %)" for key in COUNTED_OPS)
    return f"{counted}; matmuls {100 * sum(share[key] for key in MATMUL_OPS):.0f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--encoders", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    batch = random_train_batch(BATCH, FEATURE_DIM, device)
    print(f"{args.threads} thread(s), medians of {args.repeats} steps each, the two settings "
          "taking turns:")
    print("| encoder | GRU backward | step s | ratio | cat, add, add_ calls (self CPU) |")
    print("|---|---|---|---|---|")
    for name in args.encoders:
        steps = {}
        for setting, batched in SETTINGS.items():
            module = with_batched_gradients(build_module(VARIANTS[name], device), batched)
            optimizer = module.configure_optimizers()["optimizer"]
            steps[setting] = lambda module=module, optimizer=optimizer: optimizer_step(
                module, optimizer, batch)
        with FlopCounterMode(display=False) as counter:
            steps["torch's GRU backward"]()
        flops = counter.get_total_flops()
        shares = {setting: operation_shares(step) for setting, step in steps.items()}
        runs: dict[str, list] = {setting: [] for setting in steps}
        for _ in range(args.repeats):
            for setting, step in steps.items():
                runs[setting].append(interleaved_steps(step, device, 1))
        for setting, measured in runs.items():
            step_s = statistics.median(m.step_s[0] for m in measured)
            ratio = statistics.median(m.ratios(flops)[0] for m in measured)
            print(f"| {name} | {setting} | {step_s:.2f} | {ratio:.3f} | {shares[setting]} |",
                  flush=True)


if __name__ == "__main__":
    main()
