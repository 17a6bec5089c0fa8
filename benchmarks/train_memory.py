"""Memory of training each model at paper dimensions, for planning GPU runs (docs/training.md).

    python benchmarks/train_memory.py [--threads 1] [--batch 32]

For each model (STR, TCMR-like, VIBE-like generator; D = 2048, GRU 2 x 1024, regressor 1024, the
mannequin body) a fresh child process builds the model and a fused Adam, runs one training step
(forward, loss, backward, optimizer step) on a random batch of ``--batch`` windows of 16 frames,
and a second one. Figures:

- ``total``: the child's peak resident memory (``VmHWM``) after the two steps minus its resident
  memory (``VmRSS``) before the model was built: everything training holds at its peak;
- ``state``: the part that lives through the whole run, from the parameter count: fp32 weights,
  their gradients and Adam's two moments (16 bytes per parameter);
- ``activations``: total - state: what the step keeps for the backward pass, the loss's and the
  update's temporaries, the body model's buffers.

Measured on the CPU. A GPU holds the same tensors; its caching allocator rounds them up and
the CUDA context adds several hundred MiB, so read the sum as a lower bound of a GPU's need.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODELS = ("STR", "TCMR-like", "VIBE-like")
BYTES_PER_PARAMETER = 4 + 4 + 8  # weight, gradient, Adam's exp_avg and exp_avg_sq (fp32)


def status_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(model: str, batch: int) -> dict[str, float]:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import FEATURE_DIM, VARIANTS, build_module, optimizer_step, random_train_batch

    device = torch.device("cpu")
    data = random_train_batch(batch, FEATURE_DIM, device)
    before = status_mib("VmRSS")
    module = build_module(VARIANTS[model], device)
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-5, fused=True)
    for _ in range(2):  # the first creates the gradients and Adam's moments
        optimizer_step(module, optimizer, data)
    parameters = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"parameters": parameters, "state_mib": parameters * BYTES_PER_PARAMETER / 2**20,
            "total_mib": status_mib("VmHWM") - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32, help="windows per step (global batch)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(child(args.child, args.batch)))
        return
    print(f"| model | trainable parameters | state MiB (16 B/parameter) | activations MiB "
          f"(batch {args.batch}) | total MiB |")
    print("|---|---|---|---|---|")
    for model in MODELS:
        out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                              "--batch", str(args.batch), "--child", model],
                             check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        total, state = result["total_mib"], result["state_mib"]
        print(f"| {model} | {result['parameters']:,} | {state:.0f} | {total - state:.0f} | "
              f"{total:.0f} |", flush=True)


if __name__ == "__main__":
    main()
