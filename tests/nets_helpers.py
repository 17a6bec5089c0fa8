"""Shared by the tests/test_nets*.py modules: parameter counts written out from the layer sizes
(independently of str_lightning.nets), SPIN's regressor key layout and random weights for it."""


import torch


def linear(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


def gru(inputs: int, hidden: int, layers: int, bidirectional: bool = False) -> int:
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(layers):
        layer_inputs = inputs if layer == 0 else hidden * directions
        total += directions * 3 * hidden * (layer_inputs + hidden + 2)
    return total


def gru_block(dim: int, hidden: int, layers: int, bidirectional: bool = False) -> int:
    return gru(dim, hidden, layers, bidirectional) + linear((1 + bidirectional) * hidden, dim)


def integration(inputs: int, dim: int, hidden: int = 256) -> int:
    if inputs < 2:
        return 0
    return (linear(dim, hidden) + linear(inputs * hidden, hidden) + linear(hidden, hidden)
            + linear(hidden, inputs))


def conv1d(channels: int, kernel: int) -> int:
    """Without bias (STE's convolution)."""
    return channels * channels * kernel


def str_branches(dim: int, seq_len: int, hidden: int, layers: int, att: int) -> dict[str, int]:
    """Each STR branch's parameters, with T/4-fragment TTR reaching the middle frame through
    the GRUs of fragments 2 and 3."""
    mid = seq_len // 2
    block = gru_block(dim, hidden, layers)
    return {
        "ttr": 2 * block,
        "ste_time": conv1d(dim, 3) + block,
        "ste_freq": seq_len * dim + block,
        "halves": 2 * block,
        "self": integration(mid, dim, att) + integration(seq_len - mid - 1, dim, att),
        "cross": 2 * integration(2, dim, att),
        "final": integration(3, dim, att),
    }


def str_total(dim: int, seq_len: int, hidden: int, layers: int, att: int, tendency: int = 3,
              **dropped: bool) -> int:
    """Full STR minus the branches named in ``dropped``; ``tendency`` = inputs of F_STR."""
    branches = str_branches(dim, seq_len, hidden, layers, att)
    kept = sum(v for k, v in branches.items() if not dropped.get(k, False))
    return kept + integration(tendency, dim, att)


def str_reading_total(dim: int, seq_len: int, hidden: int, layers: int, att: int,
                      supervise_frames: str = "middle", ttr_bidirectional: bool = False,
                      ste_time_excitation: str = "global") -> int:
    """Full STR under a reading: all-frame supervision builds TTR's 4th GRU block, bidirectional
    TTR blocks replace the causal ones, the per-frame STE excitation adds nothing."""
    ttr_blocks = 3 if supervise_frames == "all" else 2
    return (str_total(dim, seq_len, hidden, layers, att)
            - str_branches(dim, seq_len, hidden, layers, att)["ttr"]
            + ttr_blocks * gru_block(dim, hidden, layers, ttr_bidirectional))


def spin_regressor_keys(dim: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """The regressor entries of SPIN's HMR state_dict (SPIN / TCMR / VIBE ``lib/models/spin.py``)."""
    return {
        "fc1.weight": (hidden, dim + 157), "fc1.bias": (hidden,),
        "fc2.weight": (hidden, hidden), "fc2.bias": (hidden,),
        "decpose.weight": (144, hidden), "decpose.bias": (144,),
        "decshape.weight": (10, hidden), "decshape.bias": (10,),
        "deccam.weight": (3, hidden), "deccam.bias": (3,),
        "init_pose": (1, 144), "init_shape": (1, 10), "init_cam": (1, 3),
    }


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=gen) for key, shape in shapes.items()}
