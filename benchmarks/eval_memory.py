"""Memory of one batch of whole-sequence inference, for each model at paper dimensions.

    python benchmarks/eval_memory.py [--threads 1]

For each model (STR, TCMR-like, VIBE-like; D = 2048, GRU 2 x 1024, the mannequin body) and the
default window batch of the CPU and of a GPU (``default_window_batch``: 128 windows, and the
windows of 1024 predicted frames), a fresh child process builds the model, runs one warm-up
sequence of 8 frames, then ``predict_frames`` on a sequence that makes exactly one batch of
windows, under the synthetic protocol (meshes for MPVPE, J_regressor_h36m joints). The figure
is the growth of the child's peak resident memory (``VmHWM``) over the call: the activations of
one window batch, measured on the CPU. A GPU allocates the same tensors (its caching allocator
rounds them up); its own figure needs a run on a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODELS = ("STR", "TCMR-like", "VIBE-like")
DEVICES = ("cpu", "cuda")


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(model: str, device: str) -> dict[str, float]:
    """One batch of the default window batch of ``device``, run on the CPU."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import VARIANTS, build_module

    from str_lightning.evaluation.inference import default_window_batch

    module = build_module(VARIANTS[model], torch.device("cpu")).eval()
    windows = default_window_batch(module.encoder, torch.device(device))
    module.hparams.eval_window_batch = windows
    frames = windows * (module.encoder.seq_len if module.encoder.target_frames == "all" else 1)
    protocol = module.protocol("synthetic")
    module.predict_frames(torch.randn(8, 2048), protocol)  # warm-up
    sequence = torch.randn(frames, 2048)
    before = peak_rss_mib()
    module.predict_frames(sequence, protocol)
    return {"windows": windows, "frames": frames, "growth_mib": peak_rss_mib() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(child(*args.child)))
        return
    print("| model | default of | windows | predicted frames | peak memory growth MiB |")
    print("|---|---|---|---|---|")
    for model in MODELS:
        for device in DEVICES:
            out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                                  "--child", model, device],
                                 check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            print(f"| {model} | {device} | {result['windows']} | {result['frames']} | "
                  f"{result['growth_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
