"""Load the released TCMR and VIBE checkpoints into our TCMR-like / VIBE-like models.

A released ``checkpoint.pth.tar`` / ``*_model_*.pth.tar`` holds ``gen_state_dict`` (keys
``encoder.*`` and ``regressor.*``) and, for VIBE, ``disc_motion_state_dict``. Our modules use the
released parameter names, so the key map is: drop a DataParallel ``module.`` prefix, drop the SMPL
buffers ``regressor.smpl.*`` (our body model keeps no state), and split the rest by its first
component into the encoder's and the regressor's state dicts. Both then load with
``strict=True``. The files store ``performance`` as a numpy scalar; they are read with
``weights_only=True`` plus exactly the numpy scalar globals
(:func:`str_lightning.safe_pickle.load_torch_file`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from str_lightning.nets.interface import ModelFileError
from str_lightning.safe_pickle import load_torch_file

RELEASED_SMPL_PREFIX = "regressor.smpl."
GENERATOR_KEY = "gen_state_dict"
DISCRIMINATOR_KEY = "disc_motion_state_dict"
RELEASED_SEQ_LEN = 16  # the window both releases were trained and evaluated with
_GRU_LAYER = re.compile(r"weight_ih_l(\d+)$")


def _strip_data_parallel(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    return {key.removeprefix("module."): value for key, value in state_dict.items()}


def from_released_state_dict(state_dict: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """Map a released TCMR/VIBE ``gen_state_dict`` to ``{"encoder": sd, "regressor": sd}``.

    Raises ModelFileError on a key that belongs to neither part.
    """
    parts: dict[str, dict[str, Tensor]] = {"encoder": {}, "regressor": {}}
    for key, value in _strip_data_parallel(state_dict).items():
        if key.startswith(RELEASED_SMPL_PREFIX):
            continue
        part, _, name = key.partition(".")
        if part not in parts or not name:
            raise ModelFileError(f"released generator key {key!r} is neither 'encoder.*' nor "
                             f"'regressor.*'")
        parts[part][name] = value
    return parts


def read_released_checkpoint(path: str | Path, key: str) -> dict[str, Tensor]:
    """The state dict stored under ``key`` in a released checkpoint file (``weights_only``
    plus numpy scalars)."""
    checkpoint = load_torch_file(path)
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        found = list(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ModelFileError(f"{path}: expected key {key!r} in the checkpoint, found {found}")
    return checkpoint[key]


def load_released_generator(path: str | Path, encoder: nn.Module, regressor: nn.Module) -> None:
    """Load a released TCMR/VIBE checkpoint's generator into ``encoder`` and ``regressor``
    (strict: every parameter must be present with its shape)."""
    parts = from_released_state_dict(read_released_checkpoint(path, GENERATOR_KEY))
    for name, module in (("encoder", encoder), ("regressor", regressor)):
        try:
            module.load_state_dict(parts[name], strict=True)
        except RuntimeError as err:
            raise ModelFileError(
                f"{path}: the released {name} does not fit the model's {type(module).__name__} "
                f"(released TCMR/VIBE files need feature_dim 2048, regressor_hidden_size 1024 and "
                f"the encoder sizes of configs/model/tcmr.yaml or vibe.yaml): {err}") from err


def load_released_discriminator(path: str | Path, discriminator: nn.Module) -> None:
    """Load a released VIBE checkpoint's motion discriminator (strict)."""
    state_dict = read_released_checkpoint(path, DISCRIMINATOR_KEY)
    discriminator.load_state_dict(_strip_data_parallel(state_dict), strict=True)


def released_architecture(state_dict: dict[str, Tensor]) -> dict[str, Any]:
    """The model a released generator's ``gen_state_dict`` fits, read from its parameter names
    and shapes: ``encoder`` (``class_path`` and ``init_args``), ``feature_dim``,
    ``regressor_hidden_size`` and the ``edge_mode`` of its evaluation (``tcmr`` for TCMR).

    Raises ModelFileError for a generator that is neither TCMR's nor VIBE's.
    """
    parts = from_released_state_dict(state_dict)
    try:
        return _architecture(parts["encoder"], parts["regressor"])
    except KeyError as missing:
        raise ModelFileError(f"the released generator lacks the parameter {missing}") from None


def _architecture(encoder: dict[str, Tensor], regressor: dict[str, Tensor]) -> dict[str, Any]:
    if "gru_cur.weight_ih_l0" in encoder:  # TCMR: three GRUs around the middle frame
        gru, name = "gru_cur", "TCMREncoder"
        extra = {"attention_hidden_size": encoder["attention.fc.weight"].shape[0]}
    elif "gru.weight_ih_l0" in encoder:  # VIBE: one GRU over the window
        gru, name, extra = "gru", "VIBEEncoder", {}
    else:
        raise ModelFileError("the released generator's encoder is neither TCMR's (gru_cur.*) nor "
                         f"VIBE's (gru.*): it has {sorted(encoder)[:6]}")
    layers = [m for key in encoder if key.startswith(f"{gru}.") and (m := _GRU_LAYER.search(key))]
    return {
        "encoder": {"class_path": f"str_lightning.nets.{name}",
                    "init_args": {"hidden_size": encoder[f"{gru}.weight_hh_l0"].shape[1],
                                  "num_layers": 1 + max(int(m.group(1)) for m in layers), **extra}},
        "feature_dim": encoder[f"{gru}.weight_ih_l0"].shape[1],
        "regressor_hidden_size": regressor["fc1.weight"].shape[0],
        "edge_mode": "tcmr" if name == "TCMREncoder" else "replicate",
    }
