"""Initial weights drawn per layer name: runs with the same seed are paired across configurations."""

from functools import partial

import pytest
import torch
from torch import nn

from str_lightning.modules import PoseShapeModule
from str_lightning.modules.adversarial import VIBEModule
from str_lightning.nets import STREncoder, TCMREncoder, VIBEEncoder
from str_lightning.nets.initialisation import initialise_by_name, layer_seed

DIM, SEQ = 16, 16


def str_module(init_seed: int = 1, **switches) -> PoseShapeModule:
    encoder = partial(STREncoder, hidden_size=8, num_layers=1, integration_hidden_size=4, **switches)
    return PoseShapeModule(encoder, DIM, SEQ, regressor_hidden_size=8, init_seed=init_seed)


def shared_parameters(a: nn.Module, b: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The parameters of the layers both models have: same name, same shape of every parameter."""
    def layers(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
        return {name: dict(module.named_parameters(name, recurse=False))
                for name, module in model.named_modules() if next(module.parameters(False), None) is not None}

    mine, theirs = layers(a), layers(b)
    shared = {}
    for name, params in mine.items():
        other = theirs.get(name, {})
        if other.keys() == params.keys() and all(other[k].shape == p.shape for k, p in params.items()):
            shared.update({k: (p, other[k]) for k, p in params.items()})
    return shared


def test_the_regressor_starts_the_same_under_any_encoder():
    tcmr = PoseShapeModule(partial(TCMREncoder, hidden_size=8, num_layers=1, attention_hidden_size=4),
                           DIM, SEQ, regressor_hidden_size=8, init_seed=1)
    stored = str_module().state_dict()
    regressor = {k: v for k, v in tcmr.state_dict().items() if k.startswith("regressor.")}
    assert regressor and all(torch.equal(v, stored[k]) for k, v in regressor.items())


@pytest.mark.parametrize("switch", ["use_ttr", "use_ste", "use_ste_freq", "use_self_integration",
                                    "use_cross_integration"])
def test_an_ablation_row_keeps_the_initial_weights_of_every_block_it_keeps(switch):
    full, ablated = str_module(), str_module(**{switch: False})
    shared = shared_parameters(full, ablated)
    removed = set(dict(full.named_parameters())) - set(shared)
    assert removed  # the row builds less
    assert len(shared) > len(removed)
    for name, (a, b) in shared.items():
        assert torch.equal(a, b), name


def test_other_seeds_draw_other_weights_and_building_leaves_the_global_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    one, two = str_module(init_seed=1), str_module(init_seed=2)
    assert not torch.equal(one.regressor.fc1.weight, two.regressor.fc1.weight)
    assert torch.equal(torch.rand(3), expected)


def test_layers_keep_their_own_initialisation():
    module = str_module()
    heads = module.regressor.decpose.weight
    bound = 0.01 * (6 / sum(heads.shape)) ** 0.5  # xavier-uniform, gain 0.01
    assert heads.abs().max() <= bound and heads.abs().max() > bound / 2
    spectral = module.encoder.ste_freq.filter
    assert torch.equal(spectral.real, torch.ones_like(spectral.real))
    assert torch.equal(spectral.imag, torch.zeros_like(spectral.imag))


def test_the_discriminator_is_paired_too():
    def vibe(hidden: int) -> VIBEModule:
        return VIBEModule(partial(VIBEEncoder, hidden_size=hidden, num_layers=1), DIM, SEQ,
                          regressor_hidden_size=8, init_seed=4, discriminator_hidden_size=8,
                          discriminator_layers=1, discriminator_attention_size=8)

    narrow, wide = vibe(8), vibe(12)
    shared = shared_parameters(narrow, wide)
    assert any(name.startswith("discriminator.") for name in shared)
    assert all(torch.equal(a, b) for a, b in shared.values())


def test_the_seed_defaults_to_the_run_seed():
    torch.manual_seed(7)
    module = str_module(init_seed=None)
    assert module.hparams.init_seed == 7
    assert torch.equal(module.regressor.fc1.weight, str_module(init_seed=7).regressor.fc1.weight)


def test_a_layer_without_reset_parameters_is_named():
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(3))

    model = nn.Sequential(nn.Linear(3, 3), Scale())
    with pytest.raises(TypeError, match=r"net\.1 \(Scale\) owns parameters but defines no "
                                        r"reset_parameters"):
        initialise_by_name(model, 0, "net")


def test_layer_seeds_are_stable_numbers():
    assert layer_seed(1, "regressor.fc1") == layer_seed(1, "regressor.fc1")
    assert len({layer_seed(1, "a"), layer_seed(2, "a"), layer_seed(1, "b")}) == 3
    assert 0 <= layer_seed(2**40, "x") < 2**64
