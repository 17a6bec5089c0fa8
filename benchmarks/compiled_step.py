"""STR's training step eager and compiled (``compile: true``), side by side in one process.

    python benchmarks/compiled_step.py [--sizes synthetic|paper] [--repeats 9] [--threads N]
                                       [--device cpu|cuda]

The step is what ``training_step`` runs (``compute_losses``, backward, fused Adam) at batch
32 x T 16, at the widths of the synthetic experiment (configs/experiment/synthetic_str.yaml:
D 256, GRU 128 x 1, integration 64, regressor 256) or the paper's. Two copies of the model,
built from the same seed, take turns step by step on the same batch (so a change in the
machine's load hits both alike); the compiled one compiles with Inductor at its first step,
whose time is printed apart. Prints the median step of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu import precision_flags, timed, training_step
from run_all import BATCH, build_module, random_train_batch

from str_lightning.nets import STREncoder

SIZES = {
    "synthetic": {"feature_dim": 256, "regressor_hidden_size": 256, "hidden_size": 128,
                  "num_layers": 1, "integration_hidden_size": 64},
    "paper": {"feature_dim": 2048, "regressor_hidden_size": 1024},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", choices=SIZES, default="synthetic")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = dict(SIZES[args.sizes])
    batch = random_train_batch(BATCH, sizes["feature_dim"], device)
    steps = {}
    for mode in ("eager", "compiled"):
        module = build_module(STREncoder, device, **sizes)
        module.hparams.compile = mode == "compiled"
        steps[mode] = training_step(module, batch, "fp32")
    with precision_flags("fp32"):
        first = {mode: timed(step, device, 1)[0] for mode, step in steps.items()}
        times: dict[str, list[float]] = {mode: [] for mode in steps}
        for _ in range(args.repeats):
            for mode, step in steps.items():
                times[mode] += timed(step, device, 1)
    eager, compiled = (statistics.median(times[mode]) for mode in ("eager", "compiled"))
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
          f"{args.sizes} widths, batch {BATCH} x 16, {time.strftime('%Y-%m-%d')}")
    print(f"eager step {1e3 * eager:.1f} ms, compiled step {1e3 * compiled:.1f} ms (medians of "
          f"{args.repeats}, taking turns): eager / compiled = {eager / compiled:.2f}; the "
          f"compiled first step (compilation) took {first['compiled']:.0f} s")


if __name__ == "__main__":
    main()
