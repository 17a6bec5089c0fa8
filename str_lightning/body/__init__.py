"""Body model: SMPL through smplx, joint sets, model files and the built-in mannequin."""

from str_lightning.body.model_files import (
    MANNEQUIN,
    BodyFiles,
    BodyModelFileError,
    convert_pkl_to_npz,
    load_smpl_arrays,
)
from str_lightning.body.smpl import BodyModel, BodyOutput
from str_lightning.body.sources import load_body_files

__all__ = [
    "MANNEQUIN",
    "BodyFiles",
    "BodyModel",
    "BodyModelFileError",
    "BodyOutput",
    "convert_pkl_to_npz",
    "load_body_files",
    "load_smpl_arrays",
]
