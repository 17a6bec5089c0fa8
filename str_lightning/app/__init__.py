"""The composition root: the ``str-lightning`` command, the LightningCLI and the main job.

The only package allowed to import all three layers — the core (``str_lightning``),
``datamodules`` and ``callbacks`` — and wire them together (docs/architecture.md).
"""
