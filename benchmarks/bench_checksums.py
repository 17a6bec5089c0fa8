"""What verifying the shard checksums costs a test, against the test itself.

``ShardDataModule(verify_checksums=[..."test"...])`` (the default) hashes every shard of the test
splits and compares the sha256 with the manifest's before the test reads them. For each case
this script times, back to back in this process (best of ``--repeats``):

- ``verify``: ``datamodules.schema.verify_checksums`` over the test splits (the page cache is
  warm, as it is for the test after the verification has read the files);
- ``test``: ``Trainer.test`` of the model on the same splits without verification
  (whole-sequence inference, metrics, reading the clips in the process).

Cases: ``synthetic``: the synthetic benchmark's test and test-dark splits, STR at the widths of
``configs/experiment/synthetic_str.yaml``; ``paper``: the same clips with random float16
features of D = 2048 (the size of SPIN's features, so of every real split), STR at the paper's
widths (``configs/model/str.yaml``). The models are untrained: their time does not depend on the
weights.

Usage: python benchmarks/bench_checksums.py [--data data/synthetic] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Trainer

from datamodules.datamodule import ShardDataModule
from datamodules.schema import ShardWriter, iterate_clips, read_manifest, verify_checksums
from str_lightning.modules import PoseShapeModule
from str_lightning.runs.config_files import compose_file

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_EXPERIMENT = REPO / "configs/experiment/synthetic_str.yaml"
PAPER_MODEL = REPO / "configs/model/str.yaml"
PAPER_FEATURE_DIM = 2048
TEST_SPLITS = {"synthetic": "test", "synthetic-dark": "test-dark"}


def best_time(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def build_model(model_config: dict, feature_dim: int) -> PoseShapeModule:
    """The config's PoseShapeModule (its encoder, widths, protocols, edge mode) for
    ``feature_dim`` features."""
    init_args = model_config["init_args"]
    module_name, _, class_name = init_args["encoder"]["class_path"].rpartition(".")
    encoder_class = getattr(importlib.import_module(module_name), class_name)
    encoder_args = init_args["encoder"].get("init_args", {})
    torch.manual_seed(0)
    return PoseShapeModule(
        lambda dim, length: encoder_class(dim, length, **encoder_args), feature_dim=feature_dim,
        regressor_hidden_size=init_args.get("regressor_hidden_size", 1024),
        eval_protocols={"synthetic-dark": "synthetic"}, edge_mode=init_args.get("edge_mode", "replicate"),
        allow_mannequin_on_real_data=True)  # the paper case: synthetic targets, random features


def with_random_features(source: Path, target: Path, feature_dim: int) -> Path:
    """A copy of the split at ``source`` whose features are random float16 of ``feature_dim``."""
    manifest = read_manifest(source)
    rng = np.random.default_rng(0)
    with ShardWriter(target, dataset=manifest.dataset, split=manifest.split) as writer:
        for clip in iterate_clips(source):
            clip = {k: v for k, v in clip.items() if not k.startswith("__")}
            clip["features"] = rng.random((len(clip["valid"]), feature_dim), np.float32).astype(np.float16)
            writer.write(clip)
    return target


def measure(name: str, model: PoseShapeModule, splits: dict[str, Path], repeats: int) -> dict:
    manifests = [read_manifest(path) for path in splits.values()]
    data = ShardDataModule(test_datasets={k: str(v) for k, v in splits.items()}, num_workers=0,
                           verify_checksums=[])
    trainer = Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)
    test_s = best_time(lambda: trainer.test(model, datamodule=data, verbose=False), repeats)
    verify_s = best_time(lambda: [verify_checksums(m) for m in manifests], repeats)
    megabytes = sum(m.shard_path(s).stat().st_size for m in manifests for s in m.shards) / 1e6
    return {"case": name, "frames": sum(m.frames for m in manifests), "MB": megabytes,
            "verify_s": verify_s, "test_s": test_s, "share": verify_s / test_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "data/synthetic",
                        help="the synthetic benchmark (str-lightning synth --out DIR)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = {name: args.data / split for name, split in TEST_SPLITS.items()}
    synthetic_model = compose_file(SYNTHETIC_EXPERIMENT)["model"]
    feature_dim = read_manifest(splits["synthetic"]).feature_dim
    rows = [measure("synthetic", build_model(synthetic_model, feature_dim), splits, args.repeats)]
    with tempfile.TemporaryDirectory() as workdir:
        wide = {name: with_random_features(path, Path(workdir) / path.name, PAPER_FEATURE_DIM)
                for name, path in splits.items()}
        rows.append(measure("paper", build_model(compose_file(PAPER_MODEL), PAPER_FEATURE_DIM),
                            wide, args.repeats))
    print(f"torch threads: {args.threads}; best of {args.repeats}")
    print("| case | frames | shards MB | verify s | test s | verify / test |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['frames']} | {row['MB']:.1f} | {row['verify_s']:.4f} | "
              f"{row['test_s']:.2f} | {100 * row['share']:.2f} % |")


if __name__ == "__main__":
    main()
