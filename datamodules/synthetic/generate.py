"""Generate the synthetic benchmark: motions -> body model -> crop camera -> features -> shards.

Every video draws from its own random generator seeded by ``(seed, crc32(split directory),
video index)``, so a video does not depend on the others or on the generation order, and the
same seed gives the same arrays. Shards are written with fixed member times (the data-core
``ShardWriter``), so the same seed also gives the same bytes with the same library versions.
"""

from __future__ import annotations

import json
import math
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from datamodules.schema import ShardWriter
from datamodules.synthetic.card import CARD_NAME, write_card
from datamodules.synthetic.motion import FPS, generate_motion, smooth_noise
from datamodules.synthetic.presets import Preset, SplitPlan
from datamodules.synthetic.simulated_features import (
    FeatureNetwork,
    Segment,
    corrupt,
    light_level,
    network_inputs,
    sample_segments,
)
from str_lightning.body import BodyModel
from str_lightning.body.joints import NUM_BETAS, NUM_POSE_6D, NUM_SMPL_JOINTS
from str_lightning.geometry import axis_angle_to_rotmat, project_to_crop

DESCRIPTION_FILE = "synthetic.json"  # written last: its presence marks a complete dataset
CROP_FILL = 2 / 1.2  # the person's extent in normalised crop units (bounding box scaled 1.2)
BODY_BATCH = 256  # fastest per frame on CPU (smplx expands the skinning weights per batch)


@dataclass
class Video:
    """One generated video (one subject) before it is cut into clips."""

    name: str
    pose: np.ndarray  # (L, 72) axis-angle, camera frame
    betas: np.ndarray  # (10,)
    appearance: np.ndarray  # (A,)
    motions: list[tuple[str, int, int]]
    rng: np.random.Generator
    corruptions: list[Segment] | None = None
    kp2d: np.ndarray | None = None  # (L, 49, 3)
    kp3d: np.ndarray | None = None  # (L, J, 3)
    features: np.ndarray | None = None  # (L, D) float16

    @property
    def frames(self) -> int:
        return len(self.pose)

    def record(self, ramp_frames: int | None) -> dict:
        """The per-video facts stored in ``synthetic.json``."""
        info = {"video": self.name, "frames": self.frames,
                "betas": [round(float(b), 4) for b in self.betas],
                "motions": [{"motion": m, "start": s, "end": e} for m, s, e in self.motions]}
        if self.corruptions is not None:
            info["corruptions"] = [c.to_json() for c in self.corruptions]
            light = light_level(self.frames, self.corruptions, ramp_frames)
            info["dark_frames"] = int((light < 0.5).sum())
        return info


def generate(out_dir: str | Path, preset: Preset, seed: int, overwrite: bool = False,
             progress: bool = True) -> dict[str, dict[str, int]]:
    """Write the whole benchmark of ``preset`` with ``seed`` to ``out_dir``.

    Builds in ``out_dir`` + ``.partial`` and renames it at the end. An existing ``out_dir`` is an
    error unless ``overwrite`` and it holds a previous synthetic dataset (``synthetic.json``).
    Returns ``{split directory: {"videos", "clips", "frames"}}``.
    """
    out_dir = Path(out_dir)
    _check_target(out_dir, overwrite)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    body = BodyModel("mannequin")
    network = feature_network(preset)
    summary, records = {}, {}
    for plan in preset.splits:
        videos = make_split(plan, preset, seed, body, network, progress)
        summary[plan.directory] = write_split(partial / plan.directory, plan, videos)
        ramp = plan.corruption.ramp_frames if plan.corruption else None
        records[plan.directory] = [v.record(ramp) for v in videos]
    write_card(partial / CARD_NAME, preset, seed, summary)
    description = {"generator": "str-lightning synth", "preset": asdict(preset), "seed": seed,
                   "fps": FPS, "summary": summary, "videos": records}
    (partial / DESCRIPTION_FILE).write_text(json.dumps(description, indent=1, sort_keys=True))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return summary


def feature_network(preset: Preset) -> FeatureNetwork:
    """The preset's fixed feature network (its own seed, shared by every split)."""
    return FeatureNetwork.random(preset.feature_seed, NUM_POSE_6D + NUM_BETAS + 3 + preset.appearance_dim,
                                 preset.hidden_dim, preset.feature_dim, preset.linear_gain,
                                 preset.nonlinear_gain)


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{out_dir}: exists; overwrite it with --overwrite")
    if not (out_dir / DESCRIPTION_FILE).is_file():
        raise FileExistsError(f"{out_dir}: exists and holds no {DESCRIPTION_FILE}, so it is not a "
                              "synthetic dataset; refusing to replace it")


def make_split(plan: SplitPlan, preset: Preset, seed: int, body: BodyModel,
               network: FeatureNetwork, progress: bool = False) -> list[Video]:
    """All videos of one split with their targets and (unless motion-only) features."""
    videos = [_make_motion(plan, preset, seed, index) for index in range(plan.videos)]
    if plan.supervision == "motion":
        return videos
    rotmat = axis_angle_to_rotmat(torch.from_numpy(np.concatenate([v.pose for v in videos]))
                                  .view(-1, NUM_SMPL_JOINTS, 3))
    betas = torch.from_numpy(np.concatenate([np.tile(v.betas, (v.frames, 1)) for v in videos]))
    joints, eval_joints = _body_joints(body, rotmat, betas, plan.joints3d == "common14",
                                       desc=plan.directory, progress=progress)
    offsets = np.cumsum([0] + [v.frames for v in videos])
    for video, start, end in zip(videos, offsets[:-1], offsets[1:]):
        cam = crop_camera(joints[start:end], video.rng)
        video.kp2d = keypoints_2d(joints[start:end], cam)
        if plan.supervision == "3d":
            video.kp3d = (eval_joints if plan.joints3d == "common14" else joints)[start:end]
        _simulate_features(video, rotmat[start:end].numpy(), cam, plan, preset, network)
    return videos


def video_rng(seed: int, directory: str, index: int) -> np.random.Generator:
    """The generator of video ``index`` of split ``directory`` (``seed >= 0``): independent of
    every other video's."""
    return np.random.default_rng([seed, zlib.crc32(directory.encode()), index])


def _make_motion(plan: SplitPlan, preset: Preset, seed: int, index: int) -> Video:
    rng = video_rng(seed, plan.directory, index)
    frames = int(rng.integers(plan.frames[0], plan.frames[1] + 1))
    motion = generate_motion(rng, frames, preset.motion)
    betas = np.clip(rng.normal(0, preset.betas_std, NUM_BETAS), -preset.betas_clip, preset.betas_clip)
    appearance = rng.normal(0, preset.appearance_std, preset.appearance_dim)
    return Video(f"{plan.directory}_{index:04d}", motion.pose, betas.astype(np.float32),
                 appearance.astype(np.float32), motion.segments, rng)


def _body_joints(body: BodyModel, rotmat: torch.Tensor, betas: torch.Tensor, with_eval: bool,
                 desc: str, progress: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """spin49 joints (N, 49, 3) of every frame, and common14 through J_regressor_h36m."""
    joints, eval_joints = [], []
    with torch.no_grad(), tqdm(total=len(rotmat), desc=f"{desc:>9}", unit="frame",
                               disable=not progress, leave=False) as bar:
        for start in range(0, len(rotmat), BODY_BATCH):
            out = body(rotmat[start:start + BODY_BATCH], betas[start:start + BODY_BATCH])
            joints.append(out.joints.numpy())
            if with_eval:
                eval_joints.append(body.eval_joints(out.vertices, "common14").numpy())
            bar.update(len(out.joints))
    return np.concatenate(joints), np.concatenate(eval_joints) if with_eval else None


def crop_camera(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Crop cameras ``(L, 3) = (s, tx, ty)`` of a tracker that frames the person.

    Per frame the joints' 2D box (weak perspective) is centred and scaled to fill
    :data:`CROP_FILL`; the result is smoothed over 9 frames (a tracker) and jittered a little
    (3 % scale, 0.03 shift; a detector is never exact).
    """
    xy = joints[..., :2].astype(np.float64)
    low, high = xy.min(axis=1), xy.max(axis=1)
    centre = (low + high) / 2
    extent = (high - low).max(axis=1)
    cam = np.stack([CROP_FILL / extent, -centre[:, 0], -centre[:, 1]], axis=1)
    cam = _smooth(cam, 9)
    t = np.arange(len(joints)) / FPS
    jitter = smooth_noise(rng, t, (3,), freq=(0.2, 2.0))
    cam[:, 0] *= 1 + 0.03 * jitter[:, 0]
    cam[:, 1:] += 0.03 * jitter[:, 1:]
    return cam.astype(np.float32)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid")
                     for c in range(values.shape[1])], axis=1)


def keypoints_2d(joints: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """spin49 ``(L, 49, 3)``: crop coordinates by :func:`project_to_crop` and confidence 1,
    or 0 for a joint outside the crop ``[-1, 1]^2``."""
    xy = project_to_crop(torch.from_numpy(joints), torch.from_numpy(cam)).numpy()
    inside = (np.abs(xy) <= 1.0).all(axis=-1, keepdims=True)
    return np.concatenate([xy, inside], axis=-1).astype(np.float32)


def _simulate_features(video: Video, rotmat: np.ndarray, cam: np.ndarray, plan: SplitPlan,
                       preset: Preset, network: FeatureNetwork) -> None:
    inputs = network_inputs(rotmat, np.tile(video.betas, (video.frames, 1)), cam,
                            np.tile(video.appearance, (video.frames, 1)))
    clean = network(inputs)
    settings = plan.corruption
    video.corruptions = sample_segments(video.rng, video.frames, preset.feature_dim, settings)
    background = preset.background_level * video.rng.gamma(2.0, 0.5, preset.feature_dim)
    video.features = corrupt(clean, video.corruptions, background, preset.noise_std, video.rng,
                             settings.ramp_frames).astype(np.float16)


def clips_of(video: Video, plan: SplitPlan) -> Iterator[dict]:
    """The schema clips of one video: chunks of at most ``plan.chunk_frames`` (near-equal
    lengths) or the whole video."""
    pieces = 1 if plan.chunk_frames is None else math.ceil(video.frames / plan.chunk_frames)
    bounds = np.linspace(0, video.frames, pieces + 1).astype(int)
    motion_only = plan.supervision == "motion"
    for start, end in pairwise(bounds.tolist()):
        clip = {
            "meta": {
                "dataset": plan.dataset, "video": video.name, "start": start,
                "split": plan.split, "fps": FPS, "kind": "motion" if motion_only else "clip",
                "supervision": {"kp2d": not motion_only, "kp3d": plan.supervision == "3d",
                                "smpl": plan.supervision in ("3d", "motion")},
                "joints3d": plan.joints3d,
            },
            "valid": np.ones(end - start, np.uint8),
            "frame_id": np.arange(start, end, dtype=np.int64),
        }
        if not motion_only:
            clip["features"] = video.features[start:end]
            clip["kp2d"] = video.kp2d[start:end]
        if plan.supervision == "3d":
            clip["kp3d"] = video.kp3d[start:end].astype(np.float32)
        if plan.supervision in ("3d", "motion"):
            clip["pose"] = video.pose[start:end]
            clip["shape"] = np.tile(video.betas, (end - start, 1))
        yield clip


def write_split(directory: Path, plan: SplitPlan, videos: list[Video]) -> dict[str, int]:
    """Write the clips of ``videos`` as shards of ``directory``; return video/clip/frame counts."""
    clips = frames = 0
    with ShardWriter(directory, dataset=plan.dataset, split=plan.split) as writer:
        for video in videos:
            for clip in clips_of(video, plan):
                writer.write(clip)
                clips += 1
                frames += len(clip["valid"])
    return {"videos": len(videos), "clips": clips, "frames": frames}
