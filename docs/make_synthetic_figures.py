"""Draw the figures of docs/synthetic.md into docs/img/.

- ``synthetic_sequence.png``: one test-dark video of the default preset (seed 0, the video
  ``str-lightning synth`` writes as ``test-dark_0000``): a strip of skeletons from its kp2d, frames
  in the dark drawn on a dark background, and below the per-frame feature energy with the dark,
  blur and occlusion segments shaded.
- ``synthetic_motions.png``: each motion of the generator for two seconds, one row per motion.

Run from the repository root: ``python docs/make_synthetic_figures.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from datamodules.synthetic.generate import (
    crop_camera,
    feature_network,
    keypoints_2d,
    make_split,
)
from datamodules.synthetic.motion import FPS, MOTIONS, euler_to_rotmat
from datamodules.synthetic.presets import DEFAULT
from datamodules.synthetic.simulated_features import light_level
from str_lightning.body import BodyModel
from str_lightning.body.joints import SPIN49

OUT = Path(__file__).parent / "img"
BONES = [("rankle", "rknee"), ("rknee", "rhip"), ("lankle", "lknee"), ("lknee", "lhip"),
         ("rhip", "lhip"), ("rwrist", "relbow"), ("relbow", "rshoulder"), ("lwrist", "lelbow"),
         ("lelbow", "lshoulder"), ("rshoulder", "lshoulder"), ("neck", "headtop"),
         ("hip", "thorax"), ("thorax", "neck")]
SEGMENT_COLOURS = {"dark": "0.25", "blur": "tab:orange", "occlusion": "tab:green"}


def draw_skeleton(ax, kp2d: np.ndarray, dark: bool) -> None:
    """spin49 crop keypoints (49, 3), image y down; left limbs red, right limbs blue."""
    ax.set_facecolor("0.15" if dark else "white")
    for a, b in BONES:
        i, j = SPIN49.index(a), SPIN49.index(b)
        colour = "tab:red" if a.startswith("l") and b.startswith("l") else \
            "tab:blue" if a.startswith("r") and b.startswith("r") else "0.6" if dark else "0.3"
        ax.plot(kp2d[[i, j], 0], kp2d[[i, j], 1], color=colour, lw=2)
    ax.set_xlim(-1, 1)
    ax.set_ylim(1, -1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def sequence_figure(path: Path, strip_frames: int = 10) -> None:
    plan = next(p for p in DEFAULT.splits if p.directory == "test-dark")
    video = make_split(plan, DEFAULT, 0, BodyModel("mannequin"), feature_network(DEFAULT))[0]
    light = light_level(video.frames, video.corruptions, plan.corruption.ramp_frames)
    shown = np.linspace(0, video.frames - 1, strip_frames).round().astype(int)
    fig = plt.figure(figsize=(1.2 * strip_frames, 4.2))
    grid = fig.add_gridspec(2, strip_frames, height_ratios=(1.5, 1), hspace=0.15, wspace=0.05)
    for k, frame in enumerate(shown):
        ax = fig.add_subplot(grid[0, k])
        draw_skeleton(ax, video.kp2d[frame], light[frame] < 0.5)
        ax.set_title(f"frame {frame}", fontsize=8)
    ax = fig.add_subplot(grid[1, :])
    t = np.arange(video.frames)
    for segment in video.corruptions:
        ax.axvspan(segment.start, segment.end, color=SEGMENT_COLOURS[segment.kind],
                   alpha=0.35 if segment.kind == "dark" else 0.2, lw=0)
    ax.plot(t, video.features.astype(np.float32).mean(axis=1), color="k", lw=1.2,
            label="feature energy (mean channel)")
    ax.plot(t, light * video.features[light == 1].astype(np.float32).mean(), "--",
            color="tab:purple", lw=1, label="light level (scaled)")
    for frame in shown:
        ax.axvline(frame, color="0.7", lw=0.6, zorder=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.4) for c in SEGMENT_COLOURS.values()]
    ax.legend(ax.get_legend_handles_labels()[0] + handles,
              ax.get_legend_handles_labels()[1] + list(SEGMENT_COLOURS), loc="upper center",
              bbox_to_anchor=(0.5, -0.3), fontsize=7, ncol=5, frameon=False)
    ax.set_xlim(0, video.frames - 1)
    ax.set_xlabel(f"frame ({FPS:g} fps)")
    ax.set_ylabel("energy")
    motions = ", ".join(f"{m} {s}-{e}" for m, s, e in video.motions)
    fig.suptitle(f"{video.name} (default preset, seed 0): {motions}", fontsize=9)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def motions_figure(path: Path, columns: int = 8) -> None:
    body = BodyModel("mannequin")
    frames = int(2 * FPS)
    t = np.arange(frames) / FPS
    fig, axes = plt.subplots(len(MOTIONS), columns, figsize=(1.1 * columns, 1.2 * len(MOTIONS)))
    for row, (name, (_, curves_of)) in enumerate(MOTIONS.items()):
        # The motion alone, seen from the front-left, instead of a whole generated video.
        rng = np.random.default_rng(row)
        rotmat = euler_to_rotmat(curves_of(t, rng).euler)
        view = euler_to_rotmat(np.array([np.pi, 0.5, 0.0]))
        rotmat[:, 0] = view @ rotmat[:, 0]
        with torch.no_grad():
            joints = body(torch.from_numpy(rotmat).float(), torch.zeros(frames, 10)).joints
        kp2d = keypoints_2d(joints.numpy(), crop_camera(joints.numpy(), rng))
        for k, frame in enumerate(np.linspace(0, frames - 1, columns).astype(int)):
            draw_skeleton(axes[row, k], kp2d[frame], dark=False)
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("motions of the generator (2 s each, before noise and blending)", fontsize=9)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sequence_figure(OUT / "synthetic_sequence.png")
    motions_figure(OUT / "synthetic_motions.png")


if __name__ == "__main__":
    main()
