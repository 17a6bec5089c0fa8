"""Silence the notices every run prints and no user can act on — exactly those, nothing else.

- torch's ``LeafSpec`` deprecation, raised inside Lightning's own pytree helper;
- Lightning's "``IterableDataset`` has ``__len__``" warning: the evaluation datasets know their
  per-rank length, and every worker is assigned its own shards (docs/data.md);
- Lightning's tip advertising litlogger;
- Lightning's ``WeightAveraging`` notice when ``validate``/``test``/``predict`` load a checkpoint
  with an EMA or SWA callback configured (recipes share their callbacks across sub-commands):
  the checkpoint's ``state_dict`` already holds the averaged weights, which is what is
  evaluated, as the notice itself says;
- W&B's "anonymous setting has no effect" (Lightning always passes ``anonymous``) and "git root
  ... does not exist" (W&B looks for git in the run directory; the commit of the source checkout
  is recorded by ``callbacks.wandb_run`` instead).

Every other warning and message still reaches the console.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

WARNING_FILTERS = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"Your `IterableDataset` has `__len__` defined", UserWarning),
    (r"You're using the WeightAveraging callback, but loading a checkpoint outside the 'fit'",
     UserWarning),
)
LIGHTNING_LOGGER = "lightning.pytorch.utilities.rank_zero"
LIGHTNING_NOTICES = re.compile(r"💡 Tip: .*litlogger")
WANDB_NOTICES = re.compile(r"The anonymous setting has no effect|git root \S+ does not exist")


class _DropMatching(logging.Filter):
    """A logging filter that drops the records whose message matches ``pattern``."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def silence_known_notices() -> None:
    """Install the torch and Lightning filters (idempotent: a second call adds nothing)."""
    for message, category in WARNING_FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category)
    logger = logging.getLogger(LIGHTNING_LOGGER)
    if not any(isinstance(f, _DropMatching) for f in logger.filters):
        logger.addFilter(_DropMatching(LIGHTNING_NOTICES))


def silence_wandb_notices() -> None:
    """Install the W&B filter (idempotent; only for runs with a W&B logger, as it imports wandb).

    W&B prints its notices with ``wandb.termwarn`` (to stderr, not through ``logging`` or
    ``warnings``), so the filter wraps that function."""
    import wandb

    original = wandb.termwarn
    if getattr(original, "_str_lightning_filtered", False):
        return

    def termwarn(string: str, *args: Any, **kwargs: Any) -> None:
        if not WANDB_NOTICES.search(string):
            original(string, *args, **kwargs)

    termwarn._str_lightning_filtered = True  # type: ignore[attr-defined]
    wandb.termwarn = termwarn
