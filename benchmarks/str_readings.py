"""CPU training-step time of each STR reading, side by side in one process.

    OMP_NUM_THREADS=1 python benchmarks/str_readings.py [--repeats 15] [--batch 32] [--sizes paper]

The readings (docs/str.md, "Readings as switches"): today's default, each switch alone and all
three together, at the synthetic experiment's sizes (configs/experiment/synthetic_str.yaml:
D = 256, T = 16, GRU 1 x 128, Integrations 64 wide, regressor 256 wide) or, with ``--sizes
paper``, the paper's (configs/model/str.yaml: D = 2048, GRU 2 x 1024, Integrations 256 wide,
regressor 1024 wide); the mannequin body in both. One
step is what Lightning's automatic optimisation runs per batch: ``compute_losses`` (encoder in
train mode, regressor on every supervised output, the paper's loss), backward, Adam. The
readings take turns step by step, so a change in the machine's load hits all of them alike;
the table gives each one's median over ``--repeats`` steps (after one warm-up step) and its
ratio to the default. The last column times the encoder alone in eval mode on 128 windows (one
batch of whole-sequence inference, ``eval_window_batch``), the same way.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_all import build_module, optimizer_step, random_train_batch

from str_lightning.nets import STREncoder

READINGS: dict[str, dict] = {
    "default": {},
    "supervise_frames=all": {"supervise_frames": "all"},
    "ttr_bidirectional": {"ttr_bidirectional": True},
    "ste_time_excitation=per_frame": {"ste_time_excitation": "per_frame"},
    "all three": {"supervise_frames": "all", "ttr_bidirectional": True,
                  "ste_time_excitation": "per_frame"},
}
SIZES: dict[str, dict[str, int]] = {
    "synthetic": {"feature_dim": 256, "regressor_hidden_size": 256, "hidden_size": 128,
                  "num_layers": 1, "integration_hidden_size": 64},
    "paper": {"feature_dim": 2048, "regressor_hidden_size": 1024, "hidden_size": 1024,
              "num_layers": 2, "integration_hidden_size": 256},
}
EVAL_WINDOWS = 128


def measure(repeats: int, batch_size: int,
            sizes: dict[str, int]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of each training step and of each eval-mode encoder pass, per reading, the
    readings interleaved."""
    device = torch.device("cpu")
    batch = random_train_batch(batch_size, sizes["feature_dim"], device)
    windows = random_train_batch(EVAL_WINDOWS, sizes["feature_dim"], device)["features"]
    runs = {}
    for name, switches in READINGS.items():
        module = build_module(STREncoder, device, **sizes, **switches)
        optimizer = module.configure_optimizers()["optimizer"]
        optimizer_step(module, optimizer, batch)  # warm-up
        runs[name] = (module, optimizer)
    train: dict[str, list[float]] = {name: [] for name in READINGS}
    evaluate: dict[str, list[float]] = {name: [] for name in READINGS}
    for _ in range(repeats):
        for name, (module, optimizer) in runs.items():
            start = time.perf_counter()
            optimizer_step(module, optimizer, batch)
            train[name].append(time.perf_counter() - start)
            with torch.no_grad():
                start = time.perf_counter()
                module.encoder.eval()(windows, train=False)
                evaluate[name].append(time.perf_counter() - start)
            module.encoder.train()
    return train, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sizes", choices=sorted(SIZES), default="synthetic",
                        help="network widths: the synthetic experiment's or the paper's")
    args = parser.parse_args()
    sizes = SIZES[args.sizes]
    train, evaluate = measure(args.repeats, args.batch, sizes)
    medians = {name: statistics.median(values) for name, values in train.items()}
    eval_medians = {name: statistics.median(values) for name, values in evaluate.items()}
    print(f"training step (forward + backward + Adam), {args.sizes} sizes, batch {args.batch} "
          f"x 16 x {sizes['feature_dim']}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), median of {args.repeats}\n")
    print("| reading | ms per step | min-max ms | ratio to default | eval encoder ms (ratio) |")
    print("|---|---|---|---|---|")
    for name, median in medians.items():
        spread = f"{1000 * min(train[name]):,.0f}-{1000 * max(train[name]):,.0f}"
        print(f"| {name} | {1000 * median:,.0f} | {spread} | "
              f"{median / medians['default']:.2f} | {1000 * eval_medians[name]:,.0f} "
              f"({eval_medians[name] / eval_medians['default']:.2f}) |")


if __name__ == "__main__":
    main()
