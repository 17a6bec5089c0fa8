"""Prediction-versus-ground-truth pictures of a few fixed validation sequences (rank 0 only).

:class:`SequenceVisuals` keeps the first ``num_sequences`` evaluation items of one validation
dataset, and after every ``every_n_validations``-th validation runs the module's own
whole-sequence inference (``pl_module.predict_frames``) on them and draws, per sequence:

- ``skeleton2d``: predicted (projected with the predicted crop camera) and ground-truth 2D
  keypoints in crop space, for a few frames;
- ``skeleton3d``: the protocol's evaluation joints, root-aligned, front and side views;
- ``mesh``: predicted and ground-truth meshes of the middle frame (str_lightning.body.render);
- ``accel``: per-frame acceleration of prediction and ground truth and the acceleration error
  (the STR paper's Fig. 5b).

PNGs go to ``<run dir>/<out_dir>/step<global step>/``; with a WandbLogger attached they are also
logged as images under ``visuals/<dataset>/<kind>``. Points are in the camera frame of the
SPIN/VIBE/TCMR data (x right, y down, the person facing the camera); pictures show them upright.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from matplotlib.figure import Figure

from callbacks.wandb_run import wandb_loggers
from str_lightning.body.joints import joint_names
from str_lightning.body.render import render_views
from str_lightning.evaluation.metrics import second_difference
from str_lightning.evaluation.protocols import target_joints
from str_lightning.geometry import align_to_root, project_to_crop

# Bones by joint name; a joint set draws the bones whose two ends it has.
BONES = (
    ("rankle", "rknee"), ("rknee", "rhip"), ("lankle", "lknee"), ("lknee", "lhip"),
    ("rhip", "lhip"), ("rhip", "rshoulder"), ("lhip", "lshoulder"), ("rshoulder", "lshoulder"),
    ("rwrist", "relbow"), ("relbow", "rshoulder"), ("lwrist", "lelbow"), ("lelbow", "lshoulder"),
    ("rshoulder", "neck"), ("lshoulder", "neck"), ("neck", "headtop"),
)
# Camera frame (y down, facing -z) to the upright model frame of the renderer (y up, facing +z).
CAMERA_TO_UPRIGHT = np.array((1.0, -1.0, -1.0))
MM_PER_M = 1000.0
GT_STYLE = {"color": "tab:green", "label": "ground truth"}
PRED_STYLE = {"color": "tab:red", "label": "prediction"}
_ITEM_KEYS = ("features", "kp2d", "kp3d", "pose", "shape", "valid", "frame_id")


def bone_indices(joint_set: str) -> list[tuple[int, int]]:
    """Index pairs of the :data:`BONES` present in ``joint_set``."""
    names = joint_names(joint_set)
    return [(names.index(a), names.index(b)) for a, b in BONES if a in names and b in names]


def shown_frames(valid: np.ndarray, count: int) -> np.ndarray:
    """``count`` evenly spaced valid frame indices (all of them when there are fewer)."""
    candidates = np.flatnonzero(valid) if valid.any() else np.arange(len(valid))
    picks = np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round().astype(int)
    return candidates[picks]


def _draw_skeleton(ax, points: np.ndarray, bones: list[tuple[int, int]], style: dict,
                   visible: np.ndarray | None = None) -> None:
    visible = np.ones(len(points), bool) if visible is None else visible
    for a, b in bones:
        if visible[a] and visible[b]:
            ax.plot(points[[a, b], 0], points[[a, b], 1], color=style["color"], linewidth=1.5)
    ax.scatter(points[visible, 0], points[visible, 1], s=6, color=style["color"],
               label=style["label"])


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def plot_skeleton2d(pred: np.ndarray, target: np.ndarray, frames: Sequence[int], title: str,
                    path: Path, joint_set: str = "spin49") -> Path:
    """Crop-space 2D keypoints ``(N, J, 2)`` of prediction and ``(N, J, 3)`` ground truth (the
    last column is the confidence; joints with confidence <= 0 are not drawn) for ``frames``."""
    bones = bone_indices(joint_set)
    fig = Figure(figsize=(2.2 * len(frames), 2.6))
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    for ax, frame in zip(axes, frames):
        _draw_skeleton(ax, target[frame, :, :2], bones, GT_STYLE, target[frame, :, 2] > 0)
        _draw_skeleton(ax, pred[frame], bones, PRED_STYLE)
        ax.set_xlim(-1.2, 1.2)
        ax.set_ylim(1.2, -1.2)  # image rows grow downwards
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"frame {frame}", fontsize=8)
    axes[0].legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{title}: 2D keypoints (crop)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_skeleton3d(pred: np.ndarray, target: np.ndarray, frames: Sequence[int], title: str,
                    path: Path, joint_set: str) -> Path:
    """Root-aligned 3D joints ``(N, J, 3)`` (metres, camera frame) of prediction and ground
    truth for ``frames``: front view on top, side view below."""
    bones = bone_indices(joint_set)
    pred, target = pred * CAMERA_TO_UPRIGHT, target * CAMERA_TO_UPRIGHT
    views = {"front": (0, 1), "side": (2, 1)}
    extent = 1.1 * max(np.abs(target[list(frames)]).max(), np.abs(pred[list(frames)]).max(), 1e-3)
    fig = Figure(figsize=(2.2 * len(frames), 4.6))
    axes = fig.subplots(len(views), len(frames), squeeze=False)
    for row, (view, axis_pair) in enumerate(views.items()):
        for col, frame in enumerate(frames):
            ax = axes[row, col]
            _draw_skeleton(ax, target[frame][:, axis_pair], bones, GT_STYLE)
            _draw_skeleton(ax, pred[frame][:, axis_pair], bones, PRED_STYLE)
            ax.set_xlim(-extent, extent)
            ax.set_ylim(-extent, extent)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"frame {frame} ({view})", fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{title}: 3D joints ({joint_set}, root-aligned)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def per_frame_acceleration(joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Second differences ``x[t-1] - 2 x[t] + x[t+1]`` of ``(N, J, 3)`` joints, ``(N, J, 3)``,
    NaN where frame ``t`` or a neighbour is invalid and at both ends."""
    acceleration = np.full(joints.shape, np.nan)
    inner = valid[:-2] & valid[1:-1] & valid[2:]
    second = second_difference(joints)
    acceleration[1:-1][inner] = second[inner]
    return acceleration


def plot_acceleration(pred: np.ndarray, target: np.ndarray, valid: np.ndarray,
                      frame_id: np.ndarray, title: str, path: Path) -> Path:
    """Per-frame acceleration (mm/frame², mean over joints of the norm) of prediction and ground
    truth, and the acceleration error per frame, from root-aligned joints ``(N, J, 3)`` in m."""
    pred_acc = per_frame_acceleration(pred, valid) * MM_PER_M
    target_acc = per_frame_acceleration(target, valid) * MM_PER_M
    fig = Figure(figsize=(7.0, 4.2))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(frame_id, np.linalg.norm(target_acc, axis=-1).mean(-1), color=GT_STYLE["color"],
             label=GT_STYLE["label"])
    top.plot(frame_id, np.linalg.norm(pred_acc, axis=-1).mean(-1), color=PRED_STYLE["color"],
             label=PRED_STYLE["label"])
    top.set_ylabel("acceleration\n(mm/frame²)", fontsize=8)
    top.legend(fontsize=7)
    error = np.linalg.norm(pred_acc - target_acc, axis=-1).mean(-1)
    bottom.plot(frame_id, error, color="tab:blue")
    bottom.set_ylabel("accel. error\n(mm/frame²)", fontsize=8)
    bottom.set_xlabel("frame", fontsize=8)
    top.set_title(f"{title}: mean accel. error {np.nanmean(error):.1f} mm/frame²", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def file_stem(dataset: str, sequence: str) -> str:
    """A file-name-safe ``<dataset>-<sequence>``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dataset}-{sequence}")


class SequenceVisuals(Callback):
    """Draw prediction versus ground truth for a few fixed validation sequences (see module doc).

    Args:
        every_n_validations: draw after the 1st, (1+n)th, ... validation (sanity checks never).
        num_sequences: how many sequences, the first ones of the dataset's rank-0 loader.
        dataset: the validation dataset drawn (a ``val_datasets`` name); None = the first.
        num_frames: frames shown in the skeleton pictures.
        out_dir: sub-directory of the run directory for the PNGs.
    """

    def __init__(self, every_n_validations: int = 1, num_sequences: int = 2,
                 dataset: str | None = None, num_frames: int = 4, out_dir: str = "visuals") -> None:
        if every_n_validations < 1 or num_sequences < 1 or num_frames < 1:
            raise ValueError("SequenceVisuals: every_n_validations, num_sequences and num_frames "
                             f"must be >= 1, got {every_n_validations}, {num_sequences}, "
                             f"{num_frames}")
        self.every_n_validations = every_n_validations
        self.num_sequences = num_sequences
        self.dataset = dataset
        self.num_frames = num_frames
        self.out_dir = out_dir
        self._validations_done = 0
        self._items: list[dict[str, Any]] = []

    def _due(self, trainer: Trainer) -> bool:
        return (trainer.is_global_zero and not trainer.sanity_checking
                and self._validations_done % self.every_n_validations == 0)

    def _dataset_index(self, trainer: Trainer) -> int:
        names = list(trainer.datamodule.val_names)
        name = self.dataset or names[0]
        if name not in names:
            raise ValueError(f"SequenceVisuals: dataset {name!r} is not a validation dataset; "
                             f"configured: {names}")
        return names.index(name)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._items = []

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                                batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if (not self._due(trainer) or len(self._items) >= self.num_sequences or batch["is_padding"]
                or dataloader_idx != self._dataset_index(trainer)):
            return
        kept = {k: batch[k].detach().cpu().clone() for k in _ITEM_KEYS if k in batch}
        self._items.append({**kept, "sequence": batch["sequence"], "dataset": batch["dataset"],
                            "joints3d": batch["joints3d"]})

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self._due(trainer) and self._items:
            folder = Path(trainer.default_root_dir) / self.out_dir / f"step{trainer.global_step:07d}"
            with torch.no_grad():
                drawn = [self.draw_item(pl_module, item, folder) for item in self._items]
            self._log_images(trainer, self._items[0]["dataset"], drawn)
        self._items = []
        self._validations_done += 1

    def draw_item(self, pl_module: LightningModule, item: dict[str, Any],
                  folder: Path) -> dict[str, Path]:
        """Write the pictures of one evaluation item; returns ``{kind: png path}``."""
        dataset, sequence = item["dataset"], item["sequence"]
        stem = folder / file_stem(dataset, sequence)
        title = f"{dataset} {sequence}"
        protocol = pl_module.protocol(dataset)
        features = item["features"].to(pl_module.device)
        full = {k: v.cpu() for k, v in pl_module.predict_frames(features).items()}
        pred_eval = pl_module.predict_frames(features, protocol)["joints"].cpu()
        valid = item["valid"].numpy().astype(bool)
        frames = shown_frames(valid, self.num_frames)
        paths = {}
        if "kp2d" in item:
            pred2d = project_to_crop(full["joints"], full["cam"]).numpy()
            paths["skeleton2d"] = plot_skeleton2d(pred2d, item["kp2d"].numpy(), frames, title,
                                                  Path(f"{stem}-skeleton2d.png"))
        if "kp3d" in item:
            gt_eval = target_joints(protocol, item["kp3d"], item["joints3d"])
            pred_aligned = align_to_root(pred_eval.double(), protocol.root).numpy()
            gt_aligned = align_to_root(gt_eval.double(), protocol.root).numpy()
            paths["skeleton3d"] = plot_skeleton3d(pred_aligned, gt_aligned, frames, title,
                                                  Path(f"{stem}-skeleton3d.png"), protocol.joint_set)
            paths["accel"] = plot_acceleration(pred_aligned, gt_aligned, valid,
                                               item["frame_id"].numpy(), title,
                                               Path(f"{stem}-accel.png"))
        paths["mesh"] = self._draw_meshes(pl_module, item, full["vertices"], frames, title,
                                          Path(f"{stem}-mesh.png"))
        return paths

    @staticmethod
    def _draw_meshes(pl_module: LightningModule, item: dict[str, Any], pred_vertices: torch.Tensor,
                     frames: np.ndarray, title: str, path: Path) -> Path:
        middle = int(frames[len(frames) // 2])
        meshes = [pred_vertices[middle].numpy()]
        titles = [f"prediction, frame {middle}"]
        if "pose" in item and "shape" in item:
            pose = item["pose"][middle:middle + 1].to(pl_module.device)
            shape = item["shape"][middle:middle + 1].to(pl_module.device)
            meshes.append(pl_module.ground_truth_vertices(pose, shape)[0].cpu().numpy())
            titles.append("ground truth")
        upright = [mesh * CAMERA_TO_UPRIGHT for mesh in meshes]
        return render_views(upright, pl_module.regressor.body.faces, titles, path)

    @staticmethod
    def _log_images(trainer: Trainer, dataset: str, drawn: list[dict[str, Path]]) -> None:
        for kind in sorted({kind for paths in drawn for kind in paths}):
            pictures = [paths[kind] for paths in drawn if kind in paths]
            for logger in wandb_loggers(trainer):
                logger.log_image(f"visuals/{dataset}/{kind}", [str(p) for p in pictures],
                                 step=trainer.global_step, caption=[p.stem for p in pictures])
