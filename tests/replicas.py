"""Replicas of the licensed files: TCMR's and VIBE's db files, SPIN's checkpoint and the released
TCMR / VIBE weights, with random contents and everything else as released.

A db replica has the file name of its :class:`~datamodules.converters.ReleasedFile` and exactly
the keys, dtypes, per-row shapes and naming conventions (``vid_name``, ``frame_id``,
``img_name``) that the releasing repository's ``lib/data_utils/*_utils.py`` writes: joblib
``.pt`` dicts of numpy arrays (string arrays as numpy unicode), Insta as an HDF5 file with byte
strings. Its videos have ``LENGTHS`` frames, one of them shorter than the 16-frame window.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import joblib
import numpy as np
import torch
from nets_helpers import random_state, spin_regressor_keys

from datamodules.converters import ReleasedFile
from str_lightning.body.joints import convert_joints

FEATURE_DIM = 2048  # SPIN's ResNet-50 features
LENGTHS = (40, 10, 24)  # frames per video; the 10-frame one gives no training window


def write_db_replica(entry: ReleasedFile, directory: Path, lengths=LENGTHS, seed: int = 0) -> Path:
    """Write the replica of ``entry`` into ``directory`` under its released name."""
    rng = np.random.default_rng(seed)
    arrays = BUILDERS[entry.dataset](entry, list(lengths), rng)
    path = Path(directory) / entry.name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".h5":
        with h5py.File(path, "w") as handle:  # VIBE's insta_utils.save_hdf5
            for key, value in arrays.items():
                handle.create_dataset(key, data=value)
    else:
        joblib.dump(arrays, path)  # every *_utils.py: joblib.dump(dataset, db_file)
    return path


# ----------------------------------------------------------------------------- per dataset


def _repeat(names: list[str], lengths: list[int]) -> np.ndarray:
    return np.concatenate([np.array([name] * n) for name, n in zip(names, lengths)])


def _features(rng, rows: int) -> np.ndarray:
    """SPIN's avgpool features: float32, non-negative (after a ReLU)."""
    return np.maximum(rng.standard_normal((rows, FEATURE_DIM)), 0).astype(np.float32)


def _boxes(rng, lengths: list[int]) -> np.ndarray:
    """Square ``[cx, cy, w, h]`` pixel boxes, one per video, smoothly moving (float64)."""
    boxes = []
    for n in lengths:
        centre = rng.uniform(300, 700, 2) + np.cumsum(rng.normal(0, 1, (n, 2)), 0)
        side = np.full((n, 1), rng.uniform(200, 400))
        boxes.append(np.hstack([centre, side, side]))
    return np.concatenate(boxes)


def _keypoints_in(rng, boxes: np.ndarray, joints: int, confidence: np.ndarray | None = None
                  ) -> np.ndarray:
    """Pixel keypoints inside each box with a 0/1 confidence (float64)."""
    offsets = rng.uniform(-0.4, 0.4, (len(boxes), joints, 2)) * boxes[:, None, 2:]
    conf = np.ones((len(boxes), joints, 1)) if confidence is None else confidence
    return np.concatenate([boxes[:, None, :2] + offsets, conf], -1)


def _spin_from(rng, rows: int, source: str, scale: float) -> np.ndarray:
    """Joints of ``source`` converted by name into SPIN-49 (zeros for the others), float64."""
    count = {"mpii3d17": 17, "common14": 14}[source]
    return convert_joints(rng.standard_normal((rows, count, 3)) * scale, source, "spin49")


def _threedpw(entry: ReleasedFile, lengths: list[int], rng) -> dict[str, np.ndarray]:
    """TCMR / VIBE ``threedpw_utils.read_data``: one video per person of a sequence."""
    rows, train = sum(lengths), entry.split == "train"
    sequences = [f"{place}_{i:02d}" for i, place in
                 enumerate(["courtyard_basketball", "downtown_walkBridge", "flat_guitar"] * 3)]
    names = [f"{seq}_{i % 2}" for i, seq in enumerate(sequences[:len(lengths)])]
    starts = rng.integers(0, 5, len(lengths))  # time_pt1: frames before the first detection
    frame_id = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
    boxes = _boxes(rng, lengths)
    conf = (rng.random((rows, 14, 1)) > 0.2).astype(np.float64)
    conf[:, 12:] = 0.0  # no neck, no head top in 3DPW's 2D
    joints3d = rng.standard_normal((rows, 49 if train else 14, 3)).astype(np.float32) * 0.3
    if not train:  # J_regressor_h36m joints with the world translation, not root-centred
        joints3d += np.array([0.5, 0.2, 4.0], np.float32)
    return {
        "vid_name": _repeat(names, lengths),
        "frame_id": frame_id,
        "joints3D": joints3d,
        "joints2D": _keypoints_in(rng, boxes, 14, conf),
        "shape": np.repeat(rng.standard_normal((len(lengths), 10)).astype(np.float32),
                           lengths, axis=0),
        "pose": (rng.standard_normal((rows, 72)) * 0.2).astype(np.float32),
        "bbox": boxes,
        "img_name": np.array([f"data/3dpw/imageFiles/{n.rsplit('_', 1)[0]}/image_{f:05d}.jpg"
                              for n, f in zip(_repeat(names, lengths), frame_id)]),
        "features": _features(rng, rows),
        "valid": rng.random(rows) > 0.1,  # campose_valid
    }


def _mpii3d(entry: ReleasedFile, lengths: list[int], rng) -> dict[str, np.ndarray]:
    """``mpii3d_utils.read_train_data`` / ``read_test_data``: segments split where a joint
    leaves the image; the test ("val") file adds ``valid_i`` (N, 1) from ``valid_frame``."""
    rows, test = sum(lengths), entry.split == "test"
    names = ([f"subj{i + 1}_seg{i}" for i in range(len(lengths))] if test else
             [f"subj{1 + i // 2}_seq{1 + i % 2}_vid{i % 3}_seg{i}" for i in range(len(lengths))])
    frames = np.concatenate([np.arange(1, n + 1) for n in lengths])
    boxes = _boxes(rng, lengths)
    joints2d = _spin_from(rng, rows, "mpii3d17", 1.0)
    defined = np.any(joints2d != 0, -1)
    joints2d[defined] = _keypoints_in(rng, boxes, 49)[defined]
    joints3d = _spin_from(rng, rows, "mpii3d17", 0.3)
    joints3d[..., :3] -= joints3d[:, 39:40, :3]  # minus the pelvis (spin 39)
    db = {
        "vid_name": _repeat(names, lengths),
        "frame_id": np.array([f"{'img' if test else 'frame'}_{f:06d}" for f in frames]),
        "img_name": np.array([f"mpi_inf_3dhp/S1/Seq1/imageFrames/video_0/frame_{f:06d}.jpg"
                              for f in frames]),
        "joints2D": joints2d,
        "joints3D": joints3d,
        "bbox": boxes,
        "features": _features(rng, rows),
    }
    if test:
        db["valid_i"] = (rng.random((rows, 1)) > 0.1).astype(np.float64)
    return db


def _h36m(entry: ReleasedFile, lengths: list[int], rng) -> dict[str, np.ndarray]:
    """TCMR ``h36m_utils.read_data_train``: every second frame (25 fps); float32 targets; SMPL
    from NeuralAnnot, or zeros in the ``_nosmpl`` files."""
    rows = sum(lengths)
    subject = "S9" if entry.split == "test" else "S1"
    names = [f"s_0{i + 1}_act_02_subact_01_ca_0{1 + i % 4}_{subject}" for i in range(len(lengths))]
    frame_id = np.concatenate([np.arange(0, 2 * n, 2) for n in lengths])
    smpl = "nosmpl" not in entry.name
    boxes = _boxes(rng, lengths)
    joints2d = _spin_from(rng, rows, "common14", 1.0)
    defined = np.any(joints2d != 0, -1)
    joints2d[defined] = _keypoints_in(rng, boxes, 49)[defined]
    return {
        "vid_name": _repeat(names, lengths),
        "frame_id": frame_id,
        "joints3D": _spin_from(rng, rows, "common14", 0.3).astype(np.float32),
        "joints2D": joints2d.astype(np.float32),
        "shape": (rng.standard_normal((rows, 10)) if smpl else np.zeros((rows, 10))).astype(np.float32),
        "pose": ((rng.standard_normal((rows, 72)) * 0.2) if smpl else np.zeros((rows, 72))
                 ).astype(np.float32),
        "bbox": boxes,
        "img_name": np.array([f"images/{n}/{n}_{f:06d}.jpg" for n, f in
                              zip(_repeat(names, lengths), frame_id)]),
        "features": _features(rng, rows),
    }


def _posetrack(entry: ReleasedFile, lengths: list[int], rng) -> dict[str, np.ndarray]:
    """``posetrack_utils.read_data``: labelled frames of one track; no ``frame_id`` key; the
    video is the annotation file's path and the track id."""
    rows = sum(lengths)
    annotations = [f"data/posetrack/posetrack_data/annotations/train/{i:06d}_mpii_train.json"
                   for i in range(len(lengths))]
    boxes = _boxes(rng, lengths)
    return {
        "img_name": np.concatenate([[f"data/posetrack/images/train/{i:06d}_mpii_train/{f:06d}.jpg"
                                     for f in range(n)] for i, n in enumerate(lengths)]),
        "joints2D": _keypoints_in(rng, boxes, 49),
        "bbox": boxes,
        "vid_name": _repeat([f"{a}_{i % 3}" for i, a in enumerate(annotations)], lengths),
        "features": _features(rng, rows),
    }


def _pennaction(entry: ReleasedFile, lengths: list[int], rng) -> dict[str, np.ndarray]:
    """``penn_action_utils.read_data``: LSP-order 2D keypoints, the video is its label file."""
    rows = sum(lengths)
    boxes = _boxes(rng, lengths)
    return {
        "img_name": np.concatenate([[f"data/pennaction/frames/{i:04d}/{f:06d}.jpg"
                                     for f in range(1, n + 1)] for i, n in enumerate(lengths)]),
        "joints2D": _keypoints_in(rng, boxes, 14),
        "bbox": boxes,
        "vid_name": _repeat([f"{i:04d}" for i in range(len(lengths))], lengths),
        "features": _features(rng, rows),
    }


def _insta(entry: ReleasedFile, lengths: list[int], rng) -> dict[str, np.ndarray]:
    """VIBE ``insta_utils``: 25 keypoints in the 224 crop's pixels, byte-string video names."""
    rows = sum(lengths)
    names = [f"data/insta_variety/train/insta_variety_00_copy00_hmr_noS5.ckpt-642561.tfrecord-{i}"
             for i in range(len(lengths))]
    joints = np.concatenate([rng.uniform(20, 204, (rows, 25, 2)),
                             (rng.random((rows, 25, 1)) > 0.2).astype(np.float64)], -1)
    return {
        "vid_name": np.array(_repeat(names, lengths), dtype=np.bytes_),
        "frame_id": np.concatenate([np.arange(n) for n in lengths]),
        "joints2D": joints,
        "features": _features(rng, rows),
    }


def _amass(entry: ReleasedFile, lengths: list[int], rng) -> dict[str, np.ndarray]:
    """``amass_utils``: 72 axis-angle values (SMPL-H joints 0..22 and 37) and 10 betas."""
    names = [f"CMU_{i:02d}_{i:02d}_0{i + 1}_poses" for i in range(len(lengths))]
    return {"theta": rng.standard_normal((sum(lengths), 82)) * 0.2,
            "vid_name": _repeat(names, lengths)}


BUILDERS = {"3dpw": _threedpw, "mpii3d": _mpii3d, "h36m": _h36m, "posetrack": _posetrack,
            "pennaction": _pennaction, "insta": _insta, "amass": _amass}


# ----------------------------------------------------------------------------- weights


def write_spin_checkpoint(path: Path, regressor_hidden: int, seed: int = 3) -> Path:
    """SPIN's ``spin_model_checkpoint.pth.tar``: ``{"model": HMR state_dict, ...}``, the
    regressor at ``regressor_hidden`` wide plus some of HMR's ResNet-50 (ignored on loading)."""
    model = random_state(spin_regressor_keys(FEATURE_DIM, regressor_hidden), seed)
    model = {key: value * 0.01 for key, value in model.items()}
    model.update({"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.running_mean": torch.zeros(64),
                  "layer4.2.conv3.weight": torch.zeros(FEATURE_DIM, 512, 1, 1)})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "optimizer": {}}, path)
    return path


def write_released_checkpoint(path: Path, encoder: torch.nn.Module, regressor: torch.nn.Module,
                              performance: float) -> Path:
    """A released ``*.pth.tar`` as TCMR's / VIBE's ``Trainer.save_model`` writes it:
    ``gen_state_dict`` (encoder, regressor and the SMPL layer's buffers), ``performance`` as a
    numpy scalar, the optimizers' states and the motion discriminator's."""
    generator = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    generator |= {f"regressor.{k}": v for k, v in regressor.state_dict().items()}
    generator |= {"regressor.smpl.shapedirs": torch.zeros(6890, 3, 10),
                  "regressor.smpl.faces_tensor": torch.zeros(13776, 3, dtype=torch.long)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 29, "gen_state_dict": generator, "performance": np.float64(performance),
                "gen_optimizer": {}, "disc_motion_state_dict": {}, "disc_motion_optimizer": {}},
               path)
    return path
