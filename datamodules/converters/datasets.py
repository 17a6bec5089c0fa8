"""What each TCMR/VIBE db file holds and what its clips supervise (docs/data.md).

One ``DatasetSpec`` per dataset; ``convert`` reads nothing about a dataset from anywhere else.
Keys, joint sets and conventions are those of the files as released, including their oddities
(see docs/data.md, "Converters").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one dataset's db file.

    ``kp2d_joints``: joint set of ``joints2D`` (None: no 2D keypoints, kind "motion").
    ``kp2d_in_crop``: keypoints are already pixels of the 224 crop (no bbox in the file).
    ``kp3d_joints``: split -> (joint set stored in the file, joint set written to the shards).
    ``smpl_splits``: splits whose file holds real ``pose``/``shape``.
    ``valid_key``: per-frame validity key (absent: every frame valid).
    ``fps``: nominal frame rate of the stored rows per source (no file records one; None:
    unknown, the caller must give it). Its keys are also the sources that have this file.
    """

    name: str
    splits: tuple[str, ...]
    fps: dict[str, float | None]
    kind: str = "clip"
    kp2d_joints: str | None = "spin49"
    kp2d_in_crop: bool = False
    kp3d_joints: dict[str, tuple[str, str]] = field(default_factory=dict)
    smpl_splits: tuple[str, ...] = ()
    valid_key: dict[str, str] = field(default_factory=dict)
    file_format: str = "pt"


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "3dpw", ("train", "val", "test"), fps={"tcmr": 30.0, "vibe": 30.0},
            kp2d_joints="common14",
            kp3d_joints={"train": ("spin49", "spin49"), "val": ("common14", "common14"),
                         "test": ("common14", "common14")},
            smpl_splits=("train", "val", "test"),
            valid_key={"train": "valid", "val": "valid", "test": "valid"},
        ),
        # The "val" file of both TCMR and VIBE is built from the TEST set TS1-TS6, hence split "test".
        # Its 3D joints are the 17 MPI-INF-3DHP test joints converted into spin-49 (32 rows of
        # zeros); we write them back as "mpii3d17", which loses nothing and holds no fake zeros.
        DatasetSpec(
            "mpii3d", ("train", "test"), fps={"tcmr": 25.0, "vibe": 25.0},
            kp3d_joints={"train": ("spin49", "spin49"), "test": ("spin49", "mpii3d17")},
            valid_key={"test": "valid_i"},
        ),
        DatasetSpec(
            "h36m", ("train", "test"), fps={"tcmr": 25.0},
            kp3d_joints={"train": ("spin49", "spin49"), "test": ("spin49", "spin49")},
            smpl_splits=("train", "test"),
        ),
        DatasetSpec(
            "insta", ("train",), fps={"tcmr": 25.0, "vibe": 25.0}, kp2d_joints="insta25",
            kp2d_in_crop=True, file_format="h5",
        ),
        DatasetSpec("posetrack", ("train",), fps={"tcmr": 30.0, "vibe": 30.0}),
        # Stored in common-14 order; TCMR and VIBE then read it as PennAction's native
        # order, which scrambles it. We read the order it is stored in.
        DatasetSpec("pennaction", ("train",), fps={"tcmr": 30.0, "vibe": 30.0},
                    kp2d_joints="common14"),
        # VIBE's file is subsampled to 25 fps; TCMR's keeps each sequence's mocap rate, which
        # the file does not record.
        DatasetSpec("amass", ("train",), fps={"tcmr": None, "vibe": 25.0}, kind="motion",
                    kp2d_joints=None),
    )
}
SOURCES = ("tcmr", "vibe")
