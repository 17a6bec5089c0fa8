"""Released TCMR / VIBE checkpoints load strictly into our models.

The checkpoints are licensed downloads, so the tests build state dicts with the released
parameter names and shapes, as read from the released code: TCMR_RELEASE ``lib/models/tcmr.py``
(TemporalEncoder, TemporalAttention), VIBE ``lib/models/vibe.py`` (TemporalEncoder),
``motion_discriminator.py`` + ``attention.py``, and both repositories' ``lib/models/spin.py``.
"""

import pytest
import torch
from helpers import write_random_body_dir
from nets_helpers import random_state, spin_regressor_keys

from str_lightning.nets import ModelFileError, MotionDiscriminator, TCMREncoder, VIBEEncoder
from str_lightning.nets.regressor import Regressor
from str_lightning.nets.released import (
    from_released_state_dict,
    load_released_discriminator,
    load_released_generator,
    released_architecture,
)

DIM, HIDDEN, GRU_HIDDEN = 24, 16, 12


@pytest.fixture(scope="module")
def body_dir(tmp_path_factory):
    return write_random_body_dir(tmp_path_factory.mktemp("smpl_random"))


def released_gru(prefix: str, inputs: int, hidden: int, layers: int,
                 bidirectional: bool = False) -> dict[str, tuple[int, ...]]:
    keys = {}
    for layer in range(layers):
        layer_inputs = inputs if layer == 0 else hidden * (2 if bidirectional else 1)
        for suffix in ("", "_reverse") if bidirectional else ("",):
            keys[f"{prefix}weight_ih_l{layer}{suffix}"] = (3 * hidden, layer_inputs)
            keys[f"{prefix}weight_hh_l{layer}{suffix}"] = (3 * hidden, hidden)
            keys[f"{prefix}bias_ih_l{layer}{suffix}"] = (3 * hidden,)
            keys[f"{prefix}bias_hh_l{layer}{suffix}"] = (3 * hidden,)
    return keys


def released_tcmr_encoder(dim: int, hidden: int, layers: int = 2, att: int = 256):
    keys = released_gru("gru_cur.", dim, hidden, layers, bidirectional=True)
    keys |= released_gru("gru_bef.", dim, hidden, layers) | released_gru("gru_aft.", dim, hidden,
                                                                        layers)
    keys |= {"linear_cur.weight": (dim, 2 * hidden), "linear_cur.bias": (dim,),
             "linear_bef.weight": (dim, hidden), "linear_bef.bias": (dim,),
             "linear_aft.weight": (dim, hidden), "linear_aft.bias": (dim,),
             "attention.fc.weight": (att, dim), "attention.fc.bias": (att,),
             "attention.attention.0.weight": (att, 3 * att), "attention.attention.0.bias": (att,),
             "attention.attention.2.weight": (att, att), "attention.attention.2.bias": (att,),
             "attention.attention.4.weight": (3, att), "attention.attention.4.bias": (3,)}
    return keys


def released_vibe_encoder(dim: int, hidden: int, layers: int = 2):
    return released_gru("gru.", dim, hidden, layers) | {"linear.weight": (dim, hidden),
                                                        "linear.bias": (dim,)}


def released_motion_discriminator(hidden: int, layers: int = 2):
    keys = released_gru("gru.", 69, hidden, layers)
    keys |= {"attention.attention.0.weight": (hidden, hidden), "attention.attention.0.bias": (hidden,),
             "attention.attention.3.weight": (hidden, hidden), "attention.attention.3.bias": (hidden,),
             "attention.attention.6.weight": (1, hidden), "attention.attention.6.bias": (1,),
             "fc.weight": (1, hidden), "fc.bias": (1,)}
    return keys


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


@pytest.mark.parametrize(
    ("build", "released"),
    [(TCMREncoder, released_tcmr_encoder(2048, 1024)),
     (VIBEEncoder, released_vibe_encoder(2048, 1024)),
     (MotionDiscriminator, released_motion_discriminator(1024))],
)
def test_paper_dimension_state_dicts_equal_the_released_layout(build, released):
    with torch.device("meta"):
        model = build()
    assert shapes(model) == released


def released_generator(encoder_keys: dict, seed: int) -> dict[str, torch.Tensor]:
    """A released gen_state_dict: DataParallel prefix, encoder, regressor and SMPL buffers."""
    state = {f"encoder.{k}": v for k, v in random_state(encoder_keys, seed).items()}
    state |= {f"regressor.{k}": v
              for k, v in random_state(spin_regressor_keys(DIM, HIDDEN), seed + 1).items()}
    state |= {"regressor.smpl.shapedirs": torch.zeros(6890, 3, 10),
              "regressor.smpl.betas": torch.zeros(1, 10),
              "regressor.smpl.vertex_joint_selector.extra_joints_idxs": torch.zeros(21)}
    return {f"module.{k}": v for k, v in state.items()}


@pytest.mark.parametrize("name", ["tcmr", "vibe"])
def test_released_generator_loads_strictly(tmp_path, body_dir, name):
    if name == "tcmr":
        encoder = TCMREncoder(DIM, 16, GRU_HIDDEN, 2)
        keys = released_tcmr_encoder(DIM, GRU_HIDDEN)
    else:
        encoder = VIBEEncoder(DIM, 16, GRU_HIDDEN, 2)
        keys = released_vibe_encoder(DIM, GRU_HIDDEN)
    regressor = Regressor(DIM, HIDDEN, body_model=body_dir)
    generator = released_generator(keys, seed=3)
    path = tmp_path / "released.pth.tar"
    torch.save({"epoch": 10, "gen_state_dict": generator, "performance": 52.7}, path)
    load_released_generator(path, encoder, regressor)
    for prefix, module in (("encoder", encoder), ("regressor", regressor)):
        for key, value in module.state_dict().items():
            assert torch.equal(value, generator[f"module.{prefix}.{key}"]), key


def test_released_key_map_drops_only_the_smpl_buffers():
    generator = released_generator(released_vibe_encoder(DIM, GRU_HIDDEN), seed=4)
    parts = from_released_state_dict(generator)
    assert set(parts["encoder"]) == set(released_vibe_encoder(DIM, GRU_HIDDEN))
    assert set(parts["regressor"]) == set(spin_regressor_keys(DIM, HIDDEN))


def test_released_key_map_rejects_foreign_keys():
    with pytest.raises(ValueError, match="'hmr.conv1.weight'"):
        from_released_state_dict({"hmr.conv1.weight": torch.zeros(1)})


def test_released_discriminator_loads_strictly(tmp_path):
    discriminator = MotionDiscriminator(hidden_size=GRU_HIDDEN, attention_size=GRU_HIDDEN)
    state = random_state(released_motion_discriminator(GRU_HIDDEN), seed=5)
    path = tmp_path / "vibe.pth.tar"
    torch.save({"disc_motion_state_dict": state, "gen_state_dict": {}}, path)
    load_released_discriminator(path, discriminator)
    for key, value in discriminator.state_dict().items():
        assert torch.equal(value, state[key]), key
    torch.save({"gen_state_dict": {}}, tmp_path / "tcmr.pth.tar")
    with pytest.raises(ValueError, match=r"tcmr\.pth\.tar.*'disc_motion_state_dict'"):
        load_released_discriminator(tmp_path / "tcmr.pth.tar", discriminator)


@pytest.mark.parametrize(("keys", "encoder"), [
    (released_tcmr_encoder(2048, 1024), {"class_path": "str_lightning.nets.TCMREncoder", "init_args": {
        "hidden_size": 1024, "num_layers": 2, "attention_hidden_size": 256}}),
    (released_vibe_encoder(2048, 1024), {"class_path": "str_lightning.nets.VIBEEncoder", "init_args": {
        "hidden_size": 1024, "num_layers": 2}}),
    (released_tcmr_encoder(DIM, GRU_HIDDEN, layers=3, att=5), {
        "class_path": "str_lightning.nets.TCMREncoder",
        "init_args": {"hidden_size": GRU_HIDDEN, "num_layers": 3, "attention_hidden_size": 5}}),
])
def test_the_released_architecture_is_read_from_the_parameter_shapes(keys, encoder):
    dim = keys[next(k for k in keys if k.endswith("weight_ih_l0"))][1]
    shapes = {f"module.encoder.{k}": v for k, v in keys.items()}
    shapes |= {f"module.regressor.{k}": v for k, v in spin_regressor_keys(dim, 1024).items()}
    with torch.device("meta"):
        architecture = released_architecture({k: torch.empty(v) for k, v in shapes.items()})
    assert architecture == {"encoder": encoder, "feature_dim": dim, "regressor_hidden_size": 1024,
                            "edge_mode": "tcmr" if "TCMR" in encoder["class_path"] else "replicate"}
    with pytest.raises(ModelFileError, match="neither TCMR's .* nor VIBE's"):
        released_architecture({"module.encoder.conv.weight": torch.zeros(1)})
