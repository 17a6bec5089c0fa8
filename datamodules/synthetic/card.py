"""The dataset card (``README.md``) written next to a generated synthetic benchmark."""

from __future__ import annotations

from pathlib import Path

from datamodules.schema import read_manifest
from datamodules.synthetic.motion import FPS, MOTIONS
from datamodules.synthetic.presets import DATASET, Preset
from datamodules.synthetic.simulated_features import CorruptionSettings

CARD_NAME = "README.md"
CARD_TITLE = "# Synthetic video pose-and-shape benchmark"

_SUPERVISION = {
    "3d": "features, kp2d, kp3d, SMPL pose/shape",
    "2d": "features, kp2d only (no kp3d, no SMPL)",
    "motion": "SMPL pose/shape only (kind `motion`, no features)",
}


def write_card(path: Path, preset: Preset, seed: int, summary: dict[str, dict[str, int]]) -> None:
    """Write the card: how the data was made, with the exact parameters, seeds and sizes."""
    path.write_text("\n".join(_card_lines(preset, seed, summary)) + "\n")


def is_synthetic_benchmark(split_dir: str | Path) -> bool:
    """Whether ``split_dir`` is a split of a benchmark made by ``str-lightning synth``: its
    manifest names a synthetic dataset and the benchmark's card sits in the parent directory.

    The synthetic benchmark is the only data whose targets were made with the built-in mannequin,
    so it is the only data a mannequin body model may be trained or evaluated on.
    """
    split_dir = Path(split_dir)
    card = split_dir.parent / CARD_NAME
    if not card.is_file() or not card.read_text().startswith(CARD_TITLE):
        return False
    dataset = read_manifest(split_dir).dataset
    return dataset == DATASET or dataset.startswith(f"{DATASET}-")


def _card_lines(preset: Preset, seed: int, summary: dict[str, dict[str, int]]) -> list[str]:
    motions = ", ".join(f"{name} ({weight:.0%})" for name, (weight, _) in MOTIONS.items())
    m = preset.motion
    lines = [
        f"{CARD_TITLE} (preset `{preset.name}`, seed {seed})",
        "",
        (f"Made by `str-lightning synth --preset {preset.name} --seed {seed}`; regenerating "
         "with the same command and library versions gives the same bytes. Design and reasons: "
         "docs/synthetic.md in the str-lightning repository."),
        "",
        "## Splits",
        "",
        "| directory | dataset | split | supervision | kp3d joints | videos | clips | frames |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for plan in preset.splits:
        counts = summary[plan.directory]
        lines.append(
            f"| `{plan.directory}/` | {plan.dataset} | {plan.split} | "
            f"{_SUPERVISION[plan.supervision]} | {plan.joints3d or '-'} | {counts['videos']} | "
            f"{counts['clips']} | {counts['frames']} |")
    lines += [
        "",
        (f"Every video is one new subject (no subject is shared between splits), {FPS:g} fps. "
         "Video lengths (frames, inclusive ranges) and train chunking:"),
        "",
    ]
    for plan in preset.splits:
        chunk = f", cut into clips of at most {plan.chunk_frames} frames" \
            if plan.chunk_frames else ", one clip per video"
        lines.append(f"- `{plan.directory}`: {plan.frames[0]}-{plan.frames[1]} frames{chunk}.")
    lines += [
        "",
        "## Motion",
        "",
        (f"- Motions (probability of each segment): {motions}. A video is a sequence of "
         f"segments of {m.segment_seconds[0]}-{m.segment_seconds[1]} s, cross-faded with a "
         f"logistic time constant of {m.blend_seconds} s."),
        ("- Smooth per-joint noise (sum of 3 sinusoids, 0.1-1.2 Hz) on every joint rotation; "
         "per-joint Euler limits."),
        (f"- Global orientation in the camera frame (`Rx(pi)` after the y-up body): heading "
         f"uniform in [-pi, pi] plus turns and a drift of {m.heading_drift} rad; camera "
         f"elevation uniform in {list(m.pitch_range)} rad with drift; roll drift "
         f"{m.roll_amplitude} rad."),
        f"- Betas per subject: N(0, {preset.betas_std}^2) clipped to +-{preset.betas_clip}.",
        ("- Body model: the built-in mannequin (`BodyModel(\"mannequin\")`). kp3d are its spin49 "
         "joints (train) or its J_regressor_h36m joints in common14 order (val/test), metres, "
         "camera axes, no translation (root not subtracted; metrics root-align)."),
        ("- Crop camera (s, tx, ty): a tracker frames the person's joint box to fill 1/1.2 of "
         "the crop, smoothed over 9 frames, jittered by 3 % scale and 0.03 shift. kp2d = "
         "`project_to_crop(spin49, cam)` (focal 5000, crop 224), confidence 1 inside the crop, "
         "0 outside [-1, 1]."),
        "",
        "## Features",
        "",
        (f"- D = {preset.feature_dim} channels, float16: `softplus(x W0 + relu(x W1 + b1) W2 + "
         f"b2)`, hidden width {preset.hidden_dim}, linear-path gain {preset.linear_gain}, "
         f"ReLU-path gain {preset.nonlinear_gain}, weights seeded by feature seed "
         f"{preset.feature_seed} (independent of `--seed`). Input x: 24 joint rotations in 6D "
         f"(144), betas (10), standardised crop camera (3), appearance (N(0, "
         f"{preset.appearance_std}^2)^{preset.appearance_dim} per subject)."),
        (f"- Observation noise N(0, {preset.noise_std}^2) added to every channel of every "
         "frame, then clipped at 0."),
        (f"- Per-video dim background vector: {preset.background_level} x Gamma(2, 0.5) per "
         "channel."),
        "",
        "## Corruptions (per video; segments of one kind never overlap)",
        "",
    ]
    for plan in preset.splits:
        if plan.corruption is not None:
            lines.append(f"- `{plan.directory}`: {_corruption_text(plan.corruption)}")
    lines += [
        "",
        ("`synthetic.json` lists every video: its frames, betas, motion segments and corruption "
         "segments (dark segments with the fraction of signal kept), and `dark_frames` (frames "
         "where less than half the signal is left)."),
    ]
    return lines


def _corruption_text(c: CorruptionSettings) -> str:
    return (
        f"dark {c.dark_count[0]}-{c.dark_count[1]} segments of {c.dark_frames[0]}-"
        f"{c.dark_frames[1]} frames keeping {c.dark_level[0]:.0%}-{c.dark_level[1]:.0%} of the "
        f"signal (fading over {c.ramp_frames} frames); motion blur {c.blur_count[0]}-"
        f"{c.blur_count[1]} segments of {c.blur_frames[0]}-{c.blur_frames[1]} frames "
        f"(moving average of {c.blur_window[0]}-{c.blur_window[1]} frames); occlusion "
        f"{c.occlusion_count[0]}-{c.occlusion_count[1]} segments of {c.occlusion_frames[0]}-"
        f"{c.occlusion_frames[1]} frames zeroing {c.occlusion_channels[0]:.0%}-"
        f"{c.occlusion_channels[1]:.0%} of the channels (one block)."
    )
