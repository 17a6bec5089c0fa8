"""``str-lightning quickstart``: the main job on the embedded default.

Generates the synthetic benchmark if it is absent, fits a model on it with an experiment config
(STR by default), tests the best checkpoint on every test split (test and test-dark), evaluates a
mean-pose baseline on the same splits and prints a table of MPJPE / PA-MPJPE / MPVPE / Accel,
also written to ``<run dir>/quickstart.md``.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lightning.pytorch import LightningModule, Trainer

from str_lightning.evaluation.metrics import METRIC_LABELS
from str_lightning.runs.config_files import compose_file
from str_lightning.runs.directory import RunDirectory

COLUMNS = ("mpjpe", "pa_mpjpe", "mpvpe", "accel")  # the README's order; labels: METRIC_LABELS
DEFAULT_CONFIG = Path("configs/experiment/synthetic_str.yaml")


def synthetic_root(config: Path) -> Path:
    """The synthetic benchmark directory a config trains on (parent of its first train split)."""
    data = compose_file(config)["data"]
    return (Path(data.get("root") or "") / data["train_datasets"][0]["path"]).parent


def ensure_synthetic(root: Path, preset: str, seed: int) -> None:
    """Generate the benchmark into ``root`` unless a complete one is there."""
    from datamodules.synthetic.generate import generate
    from datamodules.synthetic.presets import get_preset

    if (root / "synthetic.json").exists():
        print(f"synthetic benchmark: using {root}")
        return
    print(f"synthetic benchmark: generating preset '{preset}' (seed {seed}) into {root}")
    generate(root, get_preset(preset), seed)


def mean_pose_model(model: LightningModule) -> LightningModule:
    """A copy of ``model`` whose regressor always outputs the mean SMPL parameters."""
    baseline = copy.deepcopy(model)
    baseline.regressor = model.regressor.mean_pose_baseline()
    return baseline


def test_metrics(trainer: Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}


def results_table(rows: dict[str, dict[str, float]], datasets: list[str]) -> str:
    """Markdown: one row per method, columns dataset x metric (mm; Accel in mm/frame^2)."""
    header = ["method"] + [f"{d} {METRIC_LABELS[name]}" for d in datasets for name in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, metrics in rows.items():
        cells = [f"{metrics[key]:.1f}" if (key := f"test/{d}/{name}") in metrics else "-"
                 for d in datasets for name in COLUMNS]
        lines.append("| " + " | ".join([method, *cells]) + " |")
    return "\n".join(lines)


def run_quickstart(config: Path = DEFAULT_CONFIG, preset: str = "default", seed: int = 0) -> Path:
    """Run the main job; returns the path of the written results table."""
    from str_lightning.app.lightning_cli import cli_on

    ensure_synthetic(synthetic_root(config), preset, seed)
    cli_on(["fit", "--config", str(config), "--ckpt_path", "auto"])
    test = cli_on(["test", "--config", str(config), "--ckpt_path", "best"])
    method = type(test.model.encoder).__name__.removesuffix("Encoder")
    rows = {method: test_metrics(test.trainer)}
    baseline = Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                       enable_model_summary=False)
    baseline.test(mean_pose_model(test.model), datamodule=test.datamodule, verbose=False)
    rows["mean pose (baseline)"] = test_metrics(baseline)
    table = results_table(rows, list(test.datamodule.test_names))
    out = RunDirectory(test.trainer.default_root_dir).quickstart_table
    out.write_text(f"Test results of {config} (mm; Accel in mm/frame^2)\n\n{table}\n")
    print(f"\n{table}\n\nwritten to {out}")
    return out
