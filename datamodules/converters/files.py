"""The preprocessed db files of TCMR's and VIBE's releases and the shard directory of each.

One ``ReleasedFile`` per (source, file name): the dataset split it holds, the variant that
tells it apart from the other files of that split, TCMR's and VIBE's configs that read it, and the
directory (below the data root) the recipes in configs/ read its shards from. docs/data.md's
file map is this table (``tests/test_released_files.py`` checks that they agree).

The directory says the variant: ``<split>`` for TCMR's plain file, ``<split>-<variant>`` for
the others (``train-occ``, ``test-front-tight``), ``-vibe`` for a VIBE file whose TCMR namesake
holds other features (VIBE crops 3DPW at 1.2, TCMR at 1.3). :func:`check_released_file` refuses
to write a released file into the directory of another variant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from datamodules.schema import DataError

log = logging.getLogger(__name__)

T4_3DPW, T4_H36M_MPII3D = "repr_table4_3dpw_model", "repr_table4_h36m_mpii3d_model"
T6_3DPW, T6_H36M, T6_MPII3D = ("repr_table6_3dpw_model", "repr_table6_h36m_model",
                               "repr_table6_mpii3d_model")
TCMR_VAL_ON_3DPW = (T4_3DPW, T4_H36M_MPII3D, T6_3DPW, T6_MPII3D)
VIBE_CONFIG = "VIBE config.yaml"


@dataclass(frozen=True)
class ReleasedFile:
    """A db file as TCMR's and VIBE's code names it. ``directory`` is None for a file no recipe reads."""

    source: str
    name: str
    dataset: str
    split: str
    directory: str | None
    variant: str
    read_by: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.source.upper()}'s {self.dataset} {self.split} file ({self.variant})"

    def command(self, downloads: str = "DOWNLOADS", root: str = "data/shards") -> str:
        """The ``str-lightning data convert`` command that makes :attr:`directory`."""
        return (f"str-lightning data convert --source {self.source} --dataset {self.dataset} "
                f"--split {self.split} --db {downloads}/{self.name} --out {root}/{self.directory}")


def _tcmr(name: str, dataset: str, split: str, directory: str | None, variant: str,
          *read_by: str) -> ReleasedFile:
    return ReleasedFile("tcmr", name, dataset, split, directory, variant, read_by)


def _vibe(name: str, dataset: str, split: str, directory: str | None, variant: str,
          *read_by: str) -> ReleasedFile:
    return ReleasedFile("vibe", name, dataset, split, directory, variant, read_by)


EVALUATE = "TCMR evaluate.py"
RELEASED_FILES: tuple[ReleasedFile, ...] = (
    _tcmr("3dpw_train_db.pt", "3dpw", "train", "3dpw/train", "plain crops", T4_H36M_MPII3D),
    _tcmr("3dpw_train_occ_db.pt", "3dpw", "train", "3dpw/train-occ",
          "occlusion-augmented crops", T4_3DPW),
    _tcmr("3dpw_val_db.pt", "3dpw", "val", "3dpw/val", "plain crops",
          *(f"{title} (validation)" for title in TCMR_VAL_ON_3DPW)),
    _tcmr("3dpw_test_db.pt", "3dpw", "test", "3dpw/test", "plain crops",
          f"{EVALUATE} --dataset 3dpw"),
    _tcmr("mpii3d_train_scale12_db.pt", "mpii3d", "train", "mpii3d/train-scale12",
          "crop scale 1.2", T4_H36M_MPII3D, T6_MPII3D),
    _tcmr("mpii3d_train_scale12_occ_db.pt", "mpii3d", "train", "mpii3d/train-scale12-occ",
          "crop scale 1.2, occlusion-augmented", T4_3DPW),
    _tcmr("mpii3d_train_scale12_new_occ_db.pt", "mpii3d", "train",
          "mpii3d/train-scale12-new-occ", "crop scale 1.2, occlusion-augmented (the 'new' set)",
          T6_3DPW),
    _tcmr("mpii3d_train_scale1_db.pt", "mpii3d", "train", "mpii3d/train-scale1",
          "crop scale 1.0", T6_H36M),
    _tcmr("mpii3d_val_scale12_db.pt", "mpii3d", "test", "mpii3d/test-scale12",
          "the test set TS1-TS6, crop scale 1.2", f"{EVALUATE} --dataset mpii3d"),
    _tcmr("h36m_train_25fps_db.pt", "h36m", "train", "h36m/train",
          "all cameras, 25 fps, NeuralAnnot SMPL", T4_H36M_MPII3D, T6_MPII3D),
    _tcmr("h36m_train_25fps_occ_db.pt", "h36m", "train", "h36m/train-occ",
          "all cameras, 25 fps, occlusion-augmented", T4_3DPW, T6_3DPW),
    _tcmr("h36m_train_25fps_tight_db.pt", "h36m", "train", "h36m/train-tight",
          "all cameras, 25 fps, tight boxes", T6_H36M),
    _tcmr("h36m_test_25fps_nosmpl_db.pt", "h36m", "test", "h36m/test",
          "S9 + S11, all cameras, 25 fps, no SMPL", f"{EVALUATE} --dataset h36m ({T4_H36M_MPII3D})"),
    _tcmr("h36m_test_front_25fps_tight_nosmpl_db.pt", "h36m", "test", "h36m/test-front-tight",
          "S9 + S11, front camera, 25 fps, tight boxes, no SMPL",
          f"{EVALUATE} --dataset h36m ({T6_H36M})"),
    _tcmr("h36m_test_front_25fps_tight_db.pt", "h36m", "test", "h36m/test-front-tight",
          "S9 + S11, front camera, 25 fps, tight boxes, with SMPL columns",
          f"{T6_H36M} (validation)"),
    _tcmr("posetrack_train_db.pt", "posetrack", "train", "posetrack/train", "plain crops",
          T4_H36M_MPII3D, T6_MPII3D),
    _tcmr("posetrack_train_occ_db.pt", "posetrack", "train", "posetrack/train-occ",
          "occlusion-augmented crops", T6_3DPW),
    _tcmr("pennaction_train_scale12_db.pt", "pennaction", "train", "pennaction/train-scale12",
          "crop scale 1.2"),
    _tcmr("amass_db.pt", "amass", "train", None,
          "each sequence at its own mocap rate, which the file does not record"),
    _vibe("insta_train_db.h5", "insta", "train", "insta/train",
          "VIBE's file, which TCMR reads too", VIBE_CONFIG, *(T4_3DPW, T4_H36M_MPII3D, T6_3DPW,
                                                              T6_H36M, T6_MPII3D)),
    _vibe("3dpw_val_db.pt", "3dpw", "val", "3dpw/val-vibe", "VIBE's crops",
          f"{VIBE_CONFIG} (validation)"),
    _vibe("3dpw_test_db.pt", "3dpw", "test", "3dpw/test-vibe", "VIBE's crops", "VIBE eval.py"),
    _vibe("mpii3d_train_db.pt", "mpii3d", "train", "mpii3d/train-vibe", "VIBE's crops",
          VIBE_CONFIG),
    _vibe("mpii3d_val_db.pt", "mpii3d", "test", "mpii3d/test-vibe",
          "the test set TS1-TS6, VIBE's crops"),
    _vibe("posetrack_train_db.pt", "posetrack", "train", "posetrack/train-vibe", "VIBE's crops"),
    _vibe("pennaction_train_db.pt", "pennaction", "train", "pennaction/train-vibe",
          "VIBE's crops"),
    _vibe("amass_db.pt", "amass", "train", "amass/train-vibe", "subsampled to 25 fps",
          f"{VIBE_CONFIG} (motion discriminator)"),
)


def released_file(source: str, name: str) -> ReleasedFile | None:
    """The released file of ``source`` called ``name`` (Insta is VIBE's for both sources)."""
    for entry in RELEASED_FILES:
        if entry.name == name and (entry.source == source or entry.dataset == "insta"):
            return entry
    return None


def files_for_directory(directory: str) -> list[ReleasedFile]:
    """The released files whose shards belong in ``directory`` (``<dataset>/<split dir>``)."""
    return [entry for entry in RELEASED_FILES if entry.directory == directory]


class WrongVariantError(DataError):
    """A released db file named for another dataset, split or variant than where it is going."""


def check_released_file(source: str, dataset: str, split: str, db: Path,
                        out: Path) -> ReleasedFile | None:
    """The released file ``db`` is, after checking it against the conversion's arguments.

    Raises :class:`WrongVariantError` when ``db``'s name is a released file of another dataset
    or split than ``dataset``/``split``, a file only the other source releases, or when ``out``
    is the shard directory of another variant (``.../3dpw/train-occ`` for the plain
    ``3dpw_train_db.pt``), naming both. A name that no release uses is not checked (None).
    """
    entry = released_file(source, db.name)
    if entry is None:
        others = [e for e in RELEASED_FILES if e.name == db.name]
        if others:
            raise WrongVariantError(
                f"{db}: {db.name} is {others[0].describe()}, but --source {source} was given; "
                f"convert it with --source {others[0].source}")
        return None
    if (entry.dataset, entry.split) != (dataset, split):
        raise WrongVariantError(
            f"{db}: {db.name} is {entry.describe()}, but the command writes it as "
            f"--dataset {dataset} --split {split}; use --dataset {entry.dataset} --split "
            f"{entry.split}")
    target = f"{out.parent.name}/{out.name}"
    owners = files_for_directory(target)
    if owners and entry not in owners:
        names = " or ".join(f"{o.source.upper()}'s {o.name}" for o in owners)
        home = f"<data root>/{entry.directory}" if entry.directory else "a directory of its own"
        raise WrongVariantError(
            f"{out}: this is the shard directory of {names} ({owners[0].variant}), but --db "
            f"{db.name} is {entry.describe()}: convert it into {home}")
    if entry.directory and not owners:
        log.warning("%s: the recipes in configs/ read %s from <data root>/%s, not from %s",
                    db, db.name, entry.directory, out)
    return entry
