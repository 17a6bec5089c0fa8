"""Fused optimizer steps where the parameters' device has them, and only where the config
leaves the implementation to torch."""

from __future__ import annotations

import pytest
import torch

from str_lightning.modules import optimization
from str_lightning.modules.optimization import with_fused_step


def parameters(seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in ((5, 3), (7,))]


@pytest.fixture
def cpu_fuses(monkeypatch):
    """The CPU among the fused devices, to see the rebuild on this machine (torch has a fused
    CPU Adam)."""
    monkeypatch.setattr(optimization, "FUSED_STEP_DEVICES", ("cpu",))


def run_steps(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        for param in params:
            param.grad = torch.randn(param.shape, generator=gen)
        optimizer.step()


def test_the_rebuilt_optimizer_is_the_fused_one_with_every_setting(cpu_fuses):
    params, reference = parameters(), parameters()
    groups = [{"params": params[:1], "lr": 0.1}, {"params": params[1:]}]
    reference_groups = [{"params": reference[:1], "lr": 0.1}, {"params": reference[1:]}]
    optimizer = with_fused_step(torch.optim.AdamW(groups, lr=0.01, betas=(0.8, 0.9),
                                                  weight_decay=0.3))
    expected = torch.optim.AdamW(reference_groups, lr=0.01, betas=(0.8, 0.9), weight_decay=0.3,
                                 fused=True)
    assert type(optimizer) is torch.optim.AdamW
    assert [group["fused"] for group in optimizer.param_groups] == [True, True]
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 0.01]
    run_steps(optimizer, params)
    run_steps(expected, reference)
    for param, expected_param in zip(params, reference):
        assert torch.equal(param, expected_param)


@pytest.mark.parametrize("settings", [{"fused": False}, {"foreach": True}, {"foreach": False}])
def test_an_implementation_the_config_chose_is_kept(cpu_fuses, settings):
    optimizer = torch.optim.Adam(parameters(), **settings)
    assert with_fused_step(optimizer) is optimizer


def test_an_optimizer_without_a_fused_step_is_kept(cpu_fuses):
    optimizer = torch.optim.RMSprop(parameters())
    assert with_fused_step(optimizer) is optimizer


def test_parameters_on_a_device_without_fused_steps_keep_the_plain_step(monkeypatch):
    monkeypatch.setattr(optimization, "FUSED_STEP_DEVICES", ("cuda",))
    optimizer = torch.optim.Adam(parameters())
    assert with_fused_step(optimizer) is optimizer
    assert optimizer.defaults["fused"] is None


def test_the_module_trains_with_fused_adam_on_the_cpu():
    from str_lightning.modules import PoseShapeModule
    from str_lightning.nets import VIBEEncoder

    module = PoseShapeModule(lambda dim, seq_len: VIBEEncoder(dim, seq_len, hidden_size=8),
                             feature_dim=16, regressor_hidden_size=8)
    optimizer = module.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["fused"] is True
