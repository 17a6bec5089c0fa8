"""The GRU of every encoder: torch's ``nn.GRU`` results and gradients, with each recurrent
weight gradient taken in one product when training on the CPU."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from str_lightning.nets.gru import GRU

INPUT, HIDDEN, BATCH, STEPS = 5, 7, 3, 6


def results(gru: nn.GRU, inputs: torch.Tensor, initial: torch.Tensor | None) -> list[torch.Tensor]:
    """Outputs, last states and the gradients of a loss that uses both w.r.t. everything."""
    inputs = inputs.clone().requires_grad_()
    initial = None if initial is None else initial.clone().requires_grad_()
    output, last = gru(inputs, initial)
    (output.sin().sum() + last.cos().sum()).backward()
    grads = [inputs.grad, *([] if initial is None else [initial.grad])]
    return [output, last, *grads, *(parameter.grad for parameter in gru.parameters())]


def twins(dtype: torch.dtype, **options) -> tuple[nn.GRU, GRU]:
    reference = nn.GRU(INPUT, HIDDEN, **options).to(dtype)
    ours = GRU(INPUT, HIDDEN, **options).to(dtype)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("bidirectional,num_layers,batch_first,bias,given_state",
                         list(itertools.product([False, True], [1, 2], [True, False],
                                                [True, False], [False, True])))
def test_equals_torch_s_gru_in_results_and_every_gradient(dtype, tolerance, bidirectional,
                                                          num_layers, batch_first, bias,
                                                          given_state):
    torch.manual_seed(0)
    reference, ours = twins(dtype, num_layers=num_layers, batch_first=batch_first,
                            bidirectional=bidirectional, bias=bias)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    inputs = torch.randn(shape, dtype=dtype)
    initial = (torch.randn(num_layers * (1 + bidirectional), BATCH, HIDDEN, dtype=dtype)
               if given_state else None)
    expected, actual = results(reference, inputs, initial), results(ours, inputs, initial)
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual):
        assert (got - want).abs().max() <= tolerance * want.abs().max()


def test_a_single_step_window():
    reference, ours = twins(torch.float64, batch_first=True)
    inputs = torch.randn(BATCH, 1, INPUT, dtype=torch.float64)
    for want, got in zip(results(reference, inputs, None), results(ours, inputs, None)):
        torch.testing.assert_close(got, want)


class _WeightGradientProducts(TorchDispatchMode):
    """Counts matrix products whose result has the shape of a recurrent weight, (3H, H)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            self.count += tuple(result.shape) == (3 * HIDDEN, HIDDEN)
        return result


@pytest.mark.parametrize("batched,expected", [(True, 2 * 2), (False, 2 * 2 * STEPS)])
def test_cpu_training_takes_each_recurrent_weight_gradient_in_one_product(batched, expected):
    gru = GRU(INPUT, HIDDEN, num_layers=2, batch_first=True, bidirectional=True)
    gru.batched_weight_gradients = batched
    output, _ = gru(torch.randn(BATCH, STEPS, INPUT))
    with _WeightGradientProducts() as products:
        output.sum().backward()
    assert products.count == expected


def test_keeps_torch_s_parameters_and_state_dict_keys():
    reference, ours = twins(torch.float32, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
