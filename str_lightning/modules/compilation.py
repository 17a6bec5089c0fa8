"""The compiled step: ``torch.compile`` with the recurrent layers traced into the graph.

TorchDynamo stops its graph at every ``nn.GRU`` call unless ``allow_rnn`` is set: each GRU then
runs eagerly between compiled pieces, and a STR step falls apart into ten graphs. With
``allow_rnn`` the GRUs are traced like any other layer and a training step (forward, loss,
backward) or a batch of evaluation windows is one graph. That its numbers equal eager mode's
is tested (``tests/test_compile.py``), so the flag is set while a compiled function runs and
traces, and nowhere else.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import torch
import torch._dynamo

P = ParamSpec("P")
R = TypeVar("R")

RECOMPILE_LIMIT = 64
"""Graphs kept per compiled function (torch's default: 8, then it runs eagerly). Every model,
input shape, grad mode, autocast state and evaluation protocol is a graph of its own, and the
models of one process share the function: a benchmark of three models at two batch sizes and
three precisions needs 18, evaluation a few per protocol (a full batch of windows, the last
one of any size, a last one of 1)."""


def check_compile_options(options: dict[str, Any] | None) -> None:
    """Raise ValueError naming each key of ``options`` that ``torch.compile`` does not take."""
    accepted = set(inspect.signature(torch.compile).parameters) - {"model"}
    unknown = sorted(set(options or {}) - accepted)
    if unknown:
        raise ValueError(f"compile_options: torch.compile takes no {unknown}; its keyword "
                         f"arguments are {sorted(accepted)}")


def compile_function(function: Callable[P, R], options: dict[str, Any] | None = None
                     ) -> Callable[P, R]:
    """``torch.compile(function, **options)``, traced and run with GRUs inside the graph.

    ``options`` are ``torch.compile``'s keyword arguments (``mode``, ``backend``, ``dynamic``,
    ``fullgraph``, ``options``). Compilation happens at the first call and again when a guard
    fails (a new input shape, grad mode, autocast state), each time with ``allow_rnn`` set,
    up to :data:`RECOMPILE_LIMIT` graphs.
    """
    compiled = torch.compile(function, **(options or {}))

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch._dynamo.config.patch(allow_rnn=True, recompile_limit=RECOMPILE_LIMIT):
            return compiled(*args, **kwargs)

    return run
