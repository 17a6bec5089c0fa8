"""Find what makes a GPU step wait for the host: scalar reads, data-dependent shapes, copies.

A GPU runs ahead of the Python that queues its kernels as long as nothing asks for a value.
Reading a tensor's value on the host (``.item()``, ``int(t)``, ``if t:``, indexing a list with a
tensor), an op whose output size depends on the data (``nonzero``, boolean-mask indexing) and a
blocking copy between host and device each make the host wait until the queue has run: the
step becomes launch-bound and CUDA graphs cannot capture it. :class:`HostSyncCounter` records
every such call in its scope, so a test can require none without a GPU:

- on the CPU it sees the scalar reads, the data-dependent shapes and indexing with host data
  (a Python list or a numpy array, which a GPU would copy over on every call);
- on the ``meta`` device (shapes only, no data) it also sees every tensor made from host data
  for the device and every copy between the two, as on a GPU.

:func:`device_index` is the way around the most common of those copies: index lists.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from typing_extensions import Self

aten = torch.ops.aten

# The host reads a value the device computed.
_SCALAR_READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.equal.default}
# Output sizes that depend on the values, so the host must know them before it can go on.
_DATA_DEPENDENT_SHAPES = {
    aten.nonzero.default, aten.masked_select.default, aten.unique_consecutive.default,
    aten._unique.default, aten._unique2.default, aten.unique_dim.default,
    aten.repeat_interleave.Tensor,
}
_INDEXING_OPS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default,
                 aten._index_put_impl_.default}
_COPY_OPS = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default,
             aten._copy_from_and_resize.default}
# Functions that make a tensor from host data (lists, numpy arrays) wherever ``device`` says.
_FROM_HOST_DATA = {torch.tensor, torch.as_tensor, torch.asarray}
_INDEXING_FUNCTIONS = {torch.Tensor.__getitem__, torch.Tensor.__setitem__}


@dataclass(frozen=True)
class HostSync:
    """One call that makes a GPU wait: ``kind`` is ``"scalar read"``, ``"data-dependent
    shape"``, ``"host index"`` or ``"transfer"``; ``detail`` names the op and devices."""

    kind: str
    detail: str


class HostSyncCounter:
    """``with HostSyncCounter() as counter: step()``, then ``counter.syncs`` lists each host
    sync in order (empty for a step a GPU can run without waiting) and ``counter.ops`` counts
    the aten calls. A backward pass run in the scope is seen too.

    Transfers are copies between the host and a device, and ops whose arguments lie on both
    (a host scalar, a 0-dim CPU tensor, passes by value and is not counted; nor is a copy with
    ``non_blocking=True``, which does not wait).
    """

    def __init__(self) -> None:
        self.syncs: list[HostSync] = []
        self.ops = 0
        self._modes = (_FunctionWatch(self), _DispatchWatch(self))

    def __enter__(self) -> Self:
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)

    def summary(self) -> str:
        """The syncs as ``kind: detail`` lines (for a failing assertion's message)."""
        return "\n".join(f"{sync.kind}: {sync.detail}" for sync in self.syncs) or "none"


class _FunctionWatch(TorchFunctionMode):
    """Sees the Python-level calls whose host data never reaches the dispatcher's view."""

    def __init__(self, counter: HostSyncCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _INDEXING_FUNCTIONS and _has_host_index(args[0], args[1]):
            self.counter.syncs.append(HostSync("host index", f"{func.__name__} with {args[1]!r}"))
        elif func in _FROM_HOST_DATA and torch.device(kwargs.get("device") or "cpu").type != "cpu":
            self.counter.syncs.append(HostSync("transfer", f"{func.__name__}(..., "
                                                           f"device={kwargs['device']!r})"))
        return func(*args, **kwargs)


class _DispatchWatch(TorchDispatchMode):
    """Sees every aten call, forward and backward."""

    def __init__(self, counter: HostSyncCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        self.counter.ops += 1
        self.counter.syncs.extend(_waits_before(func, args, kwargs))
        out = func(*args, **kwargs)
        transfer = _transfer(func, args, kwargs, out)
        if transfer:
            self.counter.syncs.append(transfer)
        return out


def _tensors(*trees: Any) -> Iterator[torch.Tensor]:
    for tree in trees:
        yield from (leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor))


def _has_host_index(tensor: torch.Tensor, index: Any) -> bool:
    """An index holding a list, a numpy array or a host tensor for a device tensor."""
    for part in index if isinstance(index, tuple) else (index,):
        if isinstance(part, (list, np.ndarray)):
            return True
        if isinstance(part, torch.Tensor) and part.device != tensor.device and part.dim():
            return True
    return False


def _waits_before(func: Any, args: tuple, kwargs: dict) -> list[HostSync]:
    if func in _SCALAR_READS:
        return [HostSync("scalar read", str(func))]
    if func in _DATA_DEPENDENT_SHAPES and not (
            func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is not None):
        return [HostSync("data-dependent shape", str(func))]
    if func in _INDEXING_OPS and any(index.dtype == torch.bool for index in _tensors(args[1])):
        return [HostSync("data-dependent shape", f"{func} with a boolean mask")]
    return []


def _transfer(func: Any, args: tuple, kwargs: dict, out: Any) -> HostSync | None:
    if kwargs.get("non_blocking") or (func is aten.copy_.default and len(args) > 2 and args[2]):
        return None
    copies = func in _COPY_OPS
    sources = {t.device.type for t in _tensors(args, kwargs)
               if copies or t.dim() or t.device.type != "cpu"}
    targets = {t.device.type for t in _tensors(out)}
    if len(sources | targets) < 2 or "cpu" not in sources | targets:
        return None
    return HostSync("transfer", f"{func} {'/'.join(sorted(sources))} -> {'/'.join(sorted(targets))}")


def device_index(indices: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``indices`` as a long tensor on ``device``, made once per device and kept.

    Indexing a device tensor with a Python list or a host tensor copies the index to the device
    on every call, a blocking copy; this one is copied once. Made outside inference mode, so
    autograd may save it whatever mode the first call ran in. Never write into it. Traced by
    ``torch.compile``, it is a constant of the graph (made once, when the graph is compiled).
    """
    if torch.compiler.is_compiling():
        return torch.tensor(indices, dtype=torch.long, device=device)
    return _kept_device_index(indices, device)


@functools.cache
def _kept_device_index(indices: tuple[int, ...], device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):
        return torch.tensor(indices, dtype=torch.long, device=device)
