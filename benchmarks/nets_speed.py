"""Forward + backward time of each encoder with the regressor, side by side in one process.

    python benchmarks/nets_speed.py [--batch 32] [--seq-len 16] [--repeats 5] [--device cpu]

One training step's network work on a batch of B windows (B x T x 2048): the encoder in train mode,
the regressor on its target frames (STR / TCMR: the middle frame plus the auxiliary features,
3 x B samples; VIBE: all T frames, B x T samples), a scalar loss over the SMPL outputs, backward.
Reports the median over ``--repeats`` timed runs after one warm-up run, and the ratio to VIBE.
The models are built in turn (one in memory at a time) on the same input.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import Tensor, nn

from str_lightning.nets import EncoderOutput, Regressor, STREncoder, TCMREncoder, VIBEEncoder

ENCODERS = {"VIBE-like": VIBEEncoder, "TCMR-like": TCMREncoder, "STR": STREncoder}


def training_step(encoder: nn.Module, regressor: Regressor, features: Tensor) -> None:
    encoded: EncoderOutput = encoder(features, train=True)
    targets = torch.cat([encoded.features.reshape(-1, features.shape[-1]),
                         *encoded.auxiliary.values()])
    out = regressor(targets)
    loss = out.joints2d.square().mean() + out.joints.square().mean() + out.betas.square().mean()
    loss.backward()


def time_ms(encoder: nn.Module, regressor: Regressor, features: Tensor, repeats: int) -> float:
    def synchronize() -> None:
        if features.is_cuda:
            torch.cuda.synchronize()

    training_step(encoder, regressor, features)  # warm-up
    times = []
    for _ in range(repeats):
        encoder.zero_grad(set_to_none=True)
        regressor.zero_grad(set_to_none=True)
        synchronize()
        start = time.perf_counter()
        training_step(encoder, regressor, features)
        synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    features = torch.rand(args.batch, args.seq_len, 2048, device=device)
    regressor = Regressor().to(device).train()
    results = {}
    for name, build in ENCODERS.items():
        encoder = build(seq_len=args.seq_len).to(device).train()
        results[name] = time_ms(encoder, regressor, features, args.repeats)
        del encoder
    print(f"forward+backward, batch {args.batch} x {args.seq_len} x 2048, device {device}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}\n")
    print("| encoder + regressor | ms per batch | ratio to VIBE-like |")
    print("|---|---|---|")
    for name, ms in results.items():
        print(f"| {name} | {ms:,.0f} | {ms / results['VIBE-like']:.2f} |")


if __name__ == "__main__":
    main()
