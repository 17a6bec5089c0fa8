"""LightningModules: one base for every encoder, and VIBE-like adversarial training."""

from str_lightning.modules.base import PoseShapeModule
from str_lightning.modules.vibe import VIBEModule

__all__ = ["PoseShapeModule", "VIBEModule"]
