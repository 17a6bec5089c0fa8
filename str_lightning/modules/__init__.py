"""LightningModules: one base for every encoder, and VIBE-like adversarial training."""

from str_lightning.modules.adversarial import VIBEModule
from str_lightning.modules.base import PoseShapeModule

__all__ = ["PoseShapeModule", "VIBEModule"]
