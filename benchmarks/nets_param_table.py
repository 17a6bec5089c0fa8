"""Print the trainable-parameter table of every network and STR ablation as Markdown.

    python benchmarks/nets_param_table.py [--body-model mannequin]

Encoders are built on the meta device (no memory, no time); the regressor is built normally
because it holds the body model. Paper dimensions: D = 2048, T = 16, GRU 2 x 1024.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from str_lightning.nets import MotionDiscriminator, Regressor, STREncoder, TCMREncoder, VIBEEncoder

STR_VARIANTS: list[tuple[str, dict]] = [
    ("STR (full)", {}),
    ("STR w/o TTR", {"use_ttr": False}),
    ("STR w/o STE", {"use_ste": False}),
    ("STR w/o STE (time domain)", {"use_ste_time": False}),
    ("STR w/o STE (frequency domain)", {"use_ste_freq": False}),
    ("STR w/o self-integration", {"use_self_integration": False}),
    ("STR w/o cross-integration", {"use_cross_integration": False}),
    ("STR w/o TTR and STE (F_STR = F)", {"use_ttr": False, "use_ste": False}),
    ("STR, freq_filter identity", {"freq_filter": "identity"}),
    ("STR, freq_filter highpass", {"freq_filter": "highpass"}),
]


def trainable(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters() if p.requires_grad)


def on_meta(build, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return build(**kwargs)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body-model", default="mannequin")
    args = parser.parse_args()
    regressor = trainable(Regressor(body_model=args.body_model))
    encoders = {"VIBE-like": on_meta(VIBEEncoder), "TCMR-like": on_meta(TCMREncoder),
                "STR": on_meta(STREncoder)}
    rows = [("Regressor (SPIN/HMR)", f"{regressor:,}", "")]
    rows += [(f"{name} encoder", f"{trainable(m):,}", f"{trainable(m) + regressor:,}")
             for name, m in encoders.items()]
    rows.append(("VIBE motion discriminator", f"{trainable(on_meta(MotionDiscriminator)):,}", ""))
    print("### Networks\n")
    print(table(rows, ("network", "trainable parameters", "with regressor")))

    full = encoders["STR"]
    print("\n### STR components (full model)\n")
    print(table([(name, f"{trainable(child):,}") for name, child in full.named_children()],
                ("submodule", "trainable parameters")))

    print("\n### STR ablations\n")
    full_count = trainable(full)
    rows = []
    for name, switches in STR_VARIANTS:
        count = trainable(on_meta(STREncoder, **switches))
        rows.append((name, f"`{switches}`" if switches else "", f"{count:,}",
                     f"{count - full_count:+,}", f"{count + regressor:,}"))
    print(table(rows, ("variant", "switches", "encoder", "vs. full", "with regressor")))


if __name__ == "__main__":
    main()
