"""What a body-model name means: the built-in mannequin or a directory of SMPL files."""

from __future__ import annotations

from pathlib import Path

from str_lightning.body.mannequin import build_mannequin
from str_lightning.body.model_files import MANNEQUIN, BodyFiles, load_body_directory


def load_body_files(source: str | Path = MANNEQUIN) -> BodyFiles:
    """The arrays of a body-model source: ``"mannequin"`` or a directory of SMPL files."""
    if str(source) == MANNEQUIN:
        return build_mannequin()
    return load_body_directory(source)
