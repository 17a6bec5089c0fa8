"""Initial weights drawn per layer name, so that runs with the same seed are paired.

Two models built with the same seed start with the same weights in every layer they have in
common (same qualified name, same shapes), whatever else they build and in whatever order: the
regressor of STR and of TCMR-like, or every block an ablation row keeps. Comparisons over seeds
can then pair the runs of two configurations by seed (common random numbers), which removes the
part of the seed spread that the initialisation of shared layers causes.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import nn


def layer_seed(seed: int, name: str) -> int:
    """The seed of layer ``name`` (a qualified module name) in a model initialised with ``seed``;
    stable across processes and Python versions (no salted ``hash``)."""
    state = np.random.SeedSequence([seed % 2**64, zlib.crc32(name.encode())]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def initialise_by_name(model: nn.Module, seed: int, prefix: str = "") -> None:
    """Re-initialise every parameter of ``model`` with its layer's own ``reset_parameters``,
    each layer drawing from a generator seeded by ``layer_seed(seed, prefix + its name)``.

    Layers are reset innermost first, so a module whose ``reset_parameters`` overrides its
    children's defaults (e.g. the regressor's small output heads) has the last word. The global
    random state is left as it was. Raises ``TypeError`` naming a module that owns parameters but
    has no ``reset_parameters`` (it could not be initialised by name).
    """
    modules = list(model.named_modules(prefix=prefix.rstrip(".")))
    for name, module in reversed(modules):
        reset = getattr(module, "reset_parameters", None)
        if reset is None:
            if any(True for _ in module.parameters(recurse=False)):
                raise TypeError(f"{name or type(module).__name__} ({type(module).__name__}) owns "
                                "parameters but defines no reset_parameters(); define it so the "
                                "layer can be initialised by name")
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(layer_seed(seed, name))
            reset()
