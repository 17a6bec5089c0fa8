"""``nn.GRU`` with the weight gradients of its recurrence taken once per sequence on the CPU.

Torch's CPU GRU differentiates its recurrence step by step: every time step adds an outer
product ``(3H, B) x (B, H)`` into the gradient of ``weight_hh`` (a product with only B terms per
entry that writes all 3H x H entries, then an addition of two such matrices), and gathers its
gate gradients with a concatenation: memory traffic rather than arithmetic. At the paper's
widths (H = 1024, B = 32) taking one product per sequence instead makes STR's training step
4-6 % shorter on the CPU (docs/benchmarks.md).

:class:`GRU` keeps ``nn.GRU``'s parameters, state_dict keys, initialisation and results, and
when it trains on the CPU it runs each layer and direction as one autograd function
(:class:`_Recurrence`): its forward pass is torch's GRU cell step by step (the same operations
in the same order), its backward pass walks the steps back collecting the gate gradients of all
of them, and takes ``weight_hh``'s gradient as one ``(3H, T*B) x (T*B, H)`` product. The input
projection ``W_ih x + b_ih`` is one product over all steps outside it, as in torch.

Everywhere else (GPUs with cuDNN's fused kernels, inference, ``torch.compile`` traces, autocast,
dropout between layers, packed or unbatched input) it is ``nn.GRU`` itself.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx
from torch.nn import functional

_tanh_backward = torch.ops.aten.tanh_backward.grad_input
_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input


class _Recurrence(torch.autograd.Function):
    """One GRU layer in one direction, given its input gates ``W_ih x_t + b_ih`` of every step:
    ``(B, T, 3H), (B, H), (3H, H), (3H,) -> (B, T, H)``, the hidden state after every step.

    Each step writes into buffers kept for the backward pass (no allocation per step), with
    torch's GRU cell: ``r, z = sigmoid(gh_rz + gi_rz)``, ``n = tanh(gi_n + gh_n * r)``,
    ``h' = (h - n) * z + n``, where ``gh = W_hh h + b_hh``.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, input_gates: Tensor, initial: Tensor, weight_hh: Tensor,
                bias_hh: Tensor | None) -> Tensor:
        batch, steps, gates = input_gates.shape
        size = gates // 3
        states = input_gates.new_empty(batch, steps, size)
        hidden_gates = input_gates.new_empty(batch, steps, gates)
        reset_update = input_gates.new_empty(batch, steps, 2 * size)
        candidates = input_gates.new_empty(batch, steps, size)
        state = initial
        for t in range(steps):
            hidden = hidden_gates[:, t]
            if bias_hh is None:
                torch.mm(state, weight_hh.t(), out=hidden)
            else:
                torch.addmm(bias_hh, state, weight_hh.t(), out=hidden)
            gates_rz = torch.add(hidden[:, :2 * size], input_gates[:, t, :2 * size],
                                 out=reset_update[:, t]).sigmoid_()
            reset, update = gates_rz.chunk(2, dim=1)
            candidate = torch.addcmul(input_gates[:, t, 2 * size:], hidden[:, 2 * size:], reset,
                                      out=candidates[:, t]).tanh_()
            state = torch.sub(state, candidate, out=states[:, t]).mul_(update).add_(candidate)
        ctx.save_for_backward(initial, weight_hh, states, hidden_gates, reset_update, candidates)
        ctx.has_bias = bias_hh is not None
        return states

    @staticmethod
    def backward(ctx: FunctionCtx, grad_states: Tensor
                 ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        initial, weight_hh, states, hidden_gates, reset_update, candidates = ctx.saved_tensors
        batch, steps, size = states.shape
        previous = torch.cat((initial.unsqueeze(1), states[:, :-1]), dim=1)
        grad_input_gates = grad_states.new_empty(batch, steps, 3 * size)
        grad_hidden_gates = grad_states.new_empty(batch, steps, 3 * size)
        grad_state = torch.zeros_like(initial)
        for t in reversed(range(steps)):
            grad_state.add_(grad_states[:, t])
            reset, update = reset_update[:, t].chunk(2, dim=1)
            candidate = candidates[:, t]
            grad_rz, grad_n = grad_input_gates[:, t, :2 * size], grad_input_gates[:, t, 2 * size:]
            grad_reset, grad_update = grad_rz.chunk(2, dim=1)
            _tanh_backward(torch.addcmul(grad_state, grad_state, update, value=-1), candidate,
                           grad_input=grad_n)
            _sigmoid_backward(torch.mul(grad_n, hidden_gates[:, t, 2 * size:], out=grad_reset),
                              reset, grad_input=grad_reset)
            _sigmoid_backward(torch.sub(previous[:, t], candidate, out=grad_update).mul_(grad_state),
                              update, grad_input=grad_update)
            grad_hidden = grad_hidden_gates[:, t]
            grad_hidden[:, :2 * size].copy_(grad_rz)
            torch.mul(grad_n, reset, out=grad_hidden[:, 2 * size:])
            if t > 0 or ctx.needs_input_grad[1]:  # the initial state's gradient, when asked for
                grad_state = torch.addmm(grad_state.mul_(update), grad_hidden, weight_hh)
        flat_grads = grad_hidden_gates.reshape(batch * steps, 3 * size)
        grad_weight = (flat_grads.t() @ previous.reshape(batch * steps, size)
                       if ctx.needs_input_grad[2] else None)
        grad_bias = flat_grads.sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        grad_initial = grad_state if ctx.needs_input_grad[1] else None
        return grad_input_gates, grad_initial, grad_weight, grad_bias


class GRU(nn.GRU):
    """``nn.GRU`` whose CPU training takes each recurrent weight gradient in one product.

    Same constructor, parameters, state_dict and outputs as ``nn.GRU`` (to float rounding).
    ``batched_weight_gradients = False`` makes it plain ``nn.GRU`` everywhere (for comparisons).
    """

    batched_weight_gradients: bool = True

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if not self._trains_on_cpu(input):
            return super().forward(input, hx)
        sequence = input if self.batch_first else input.transpose(0, 1)
        directions = 2 if self.bidirectional else 1
        if hx is None:
            hx = sequence.new_zeros(self.num_layers * directions, sequence.shape[0],
                                    self.hidden_size)
        self.check_forward_args(input, hx, None)
        last_states = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                steps = sequence.flip(1) if direction else sequence
                input_gates = functional.linear(steps, getattr(self, "weight_ih" + suffix),
                                                getattr(self, "bias_ih" + suffix, None))
                states = _Recurrence.apply(input_gates, hx[layer * directions + direction],
                                           getattr(self, "weight_hh" + suffix),
                                           getattr(self, "bias_hh" + suffix, None))
                last_states.append(states[:, -1])
                outputs.append(states.flip(1) if direction else states)
            sequence = torch.cat(outputs, dim=2) if directions == 2 else outputs[0]
        output = sequence if self.batch_first else sequence.transpose(0, 1)
        return output, torch.stack(last_states)

    def _trains_on_cpu(self, input: Tensor) -> bool:
        """Whether this call is CPU training that the batched recurrence covers."""
        return (not torch.compiler.is_compiling() and self.batched_weight_gradients
                and isinstance(input, Tensor) and input.dim() == 3
                and input.device.type == "cpu" and input.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled("cpu")
                and not (self.training and self.dropout > 0)
                and torch.is_grad_enabled()
                and (input.requires_grad or any(p.requires_grad for p in self.parameters())))
