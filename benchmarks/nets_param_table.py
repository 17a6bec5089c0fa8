"""Print the trainable-parameter table of every network, STR ablation and reading as Markdown.

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
STR_READINGS: list[tuple[str, dict]] = [  # docs/str.md, "Readings as switches"
    ("default (middle frame, causal TTR, global A1)", {}),
    ("all-frame supervision", {"supervise_frames": "all"}),
    ("bidirectional TTR blocks", {"ttr_bidirectional": True}),
    ("per-frame STE-time excitation", {"ste_time_excitation": "per_frame"}),
    ("all three", {"supervise_frames": "all", "ttr_bidirectional": True,
                   "ste_time_excitation": "per_frame"}),
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
    print(variant_table(STR_VARIANTS, trainable(full), regressor))
    print("\n### STR readings\n")
    print(variant_table(STR_READINGS, trainable(full), regressor, with_dead=True))


def variant_table(variants: list[tuple[str, dict]], full_count: int, regressor: int,
                  with_dead: bool = False) -> str:
    """STR built with each variant's switches, counted against the full default model;
    ``with_dead`` adds the parameters that cannot receive a gradient (see ``without_gradient``)."""
    rows = []
    for name, switches in variants:
        model = on_meta(STREncoder, **switches)
        count = trainable(model)
        row = (name, f"`{switches}`" if switches else "", f"{count:,}", f"{count - full_count:+,}",
               f"{count + regressor:,}")
        if with_dead:
            sizes = dict(model.named_parameters())
            row += (f"{sum(sizes[n].numel() for n in without_gradient(switches)):,}",)
        rows.append(row)
    header = ("variant", "switches", "encoder", "vs. full", "with regressor")
    return table(rows, header + (("without gradient",) if with_dead else ()))


def without_gradient(switches: dict) -> list[str]:
    """Names of the STR parameters that get no gradient from a loss on every training output.

    Found with one backward pass through a small model with the paper's two GRU layers (the
    names depend on nothing else); its Integrations are 32 wide so that no ReLU layer starts
    with every unit dead.
    """
    torch.manual_seed(0)
    model = STREncoder(feature_dim=24, hidden_size=12, num_layers=2, integration_hidden_size=32,
                       **switches)
    out = model(torch.rand(3, model.seq_len, 24), train=True)
    sum(t.square().sum() for t in (out.features, *out.auxiliary.values())).backward()
    return [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]


if __name__ == "__main__":
    main()
