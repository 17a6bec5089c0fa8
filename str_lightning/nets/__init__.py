"""Plain nn.Modules: the SMPL regressor, the temporal encoders (STR, TCMR-like, VIBE-like) and
the single-frame control."""

from str_lightning.nets.blocks import AttentionPooling, GRUBlock, Integration
from str_lightning.nets.interface import EncoderOutput, ModelFileError, TemporalEncoder
from str_lightning.nets.regressor import Regressor, RegressorOutput, load_spin_checkpoint
from str_lightning.nets.released import (
    from_released_state_dict,
    load_released_discriminator,
    load_released_generator,
    released_architecture,
)
from str_lightning.nets.single_frame import SingleFrameEncoder
from str_lightning.nets.str import STREncoder
from str_lightning.nets.tcmr import TCMREncoder
from str_lightning.nets.vibe import MotionDiscriminator, VIBEEncoder

__all__ = [
    "AttentionPooling",
    "EncoderOutput",
    "GRUBlock",
    "Integration",
    "ModelFileError",
    "MotionDiscriminator",
    "Regressor",
    "RegressorOutput",
    "STREncoder",
    "SingleFrameEncoder",
    "TCMREncoder",
    "TemporalEncoder",
    "VIBEEncoder",
    "from_released_state_dict",
    "load_released_discriminator",
    "load_released_generator",
    "load_spin_checkpoint",
    "released_architecture",
]
