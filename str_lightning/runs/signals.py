"""Signal helpers shared by the preemption callback and the DataLoader workers.

The preemption callback records the signal(s) it handles in ``$STR_PREEMPTION_SIGNALS``; the
data loaders make their workers ignore them (SLURM signals every process of the job step, and a
worker must not die of, or act on, the signal meant for the training process).
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

SIGNALS_ENV = "STR_PREEMPTION_SIGNALS"
DEFAULT_PREEMPTION_SIGNAL = "SIGUSR1"


def parse_signal(name: str | int) -> signal.Signals:
    """``"SIGUSR1"``, ``"USR1"`` or a number -> the signal; a clear ValueError otherwise."""
    if isinstance(name, int) or str(name).isdigit():
        return signal.Signals(int(name))
    text = str(name).upper()
    text = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return signal.Signals[text]
    except KeyError:
        raise ValueError(f"PreemptionCheckpoint signal: expected a signal name such as SIGUSR1 "
                         f"or SIGUSR2, got {name!r}") from None


def preemption_signal_names() -> tuple[str, ...]:
    """The preemption signal(s) of this process: ``$STR_PREEMPTION_SIGNALS``, else SIGUSR1."""
    return tuple(os.environ.get(SIGNALS_ENV, DEFAULT_PREEMPTION_SIGNAL).split(","))


def ignore_signals(names: Iterable[str | int], worker_id: int = 0) -> None:
    """Ignore the named signals in the calling process (a ``worker_init_fn`` once bound)."""
    for name in names:
        signal.signal(parse_signal(name), signal.SIG_IGN)


def ignore_preemption_signals(worker_id: int = 0) -> None:
    """``worker_init_fn`` that ignores the signals ``preemption_signal_names`` reads in the
    worker itself (right for fork and spawn; a forkserver worker sees the server's environment,
    so use ``preemption_worker_init`` there)."""
    ignore_signals(preemption_signal_names(), worker_id)


def preemption_worker_init() -> Callable[[int], None]:
    """A picklable ``worker_init_fn`` that ignores the preemption signals named in this process
    now, whatever the workers' start method and environment."""
    return functools.partial(ignore_signals, preemption_signal_names())


@contextmanager
def preemption_signals_blocked() -> Iterator[None]:
    """Block the preemption signals in the calling thread while the block runs.

    Processes started meanwhile inherit the blocked mask, across ``exec`` too, so a helper such
    as the DataLoaders' forkserver never dies of the signal SLURM sends to every process of the
    job step. A signal arriving meanwhile is not lost: it is delivered when the block ends.
    """
    blocked = {parse_signal(name) for name in preemption_signal_names()}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
