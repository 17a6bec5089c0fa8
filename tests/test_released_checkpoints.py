"""Released TCMR / VIBE ``.pth.tar`` files: numpy-scalar metadata and ``str-lightning test``.

The real files are licensed downloads, so the tests write files in their layout (TCMR's and
VIBE's ``Trainer.save_model``: ``epoch``, ``gen_state_dict`` with the SMPL buffers,
``performance`` as a numpy scalar, both optimizers' states and the motion discriminator), under
numpy 1.x and numpy 2.x module names, in torch's zip and legacy formats.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from training_helpers import ENCODERS, tiny_config, write_config

from datamodules.schema import iterate_clips
from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.evaluation.protocols import (
    build_metrics,
    get_protocol,
    target_joints,
    update_metrics,
)
from str_lightning.modules import PoseShapeModule, VIBEModule
from str_lightning.nets import TCMREncoder, VIBEEncoder
from str_lightning.runs.directory import RunDirectory
from str_lightning.safe_pickle import array_global, load_torch_file

REPO = Path(__file__).resolve().parents[1]
NUMPY_1 = "numpy.core.multiarray"
NUMPY_2 = "numpy._core.multiarray"
SCALAR = array_global(NUMPY_2, "scalar")
FEATURE_DIM, SEQ_LEN, REGRESSOR_HIDDEN = 6, 8, 16


def numpy_named_pickle_module(multiarray: str) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.save`` that names numpy's scalar rebuilder
    ``<multiarray>.scalar``: what numpy 1.x (``numpy.core``) or 2.x (``numpy._core``) writes."""

    class Pickler(pickle._Pickler):
        def save_global(self, obj, name=None):
            if obj is SCALAR:
                self.write(pickle.GLOBAL + f"{multiarray}\nscalar\n".encode())
                self.memoize(obj)
            else:
                super().save_global(obj, name)

    module = types.ModuleType(f"pickle_as_{multiarray.replace('.', '_')}")
    module.Pickler, module.dump = Pickler, pickle.dump
    return module


def save_with_numpy_names(obj, path: Path, multiarray: str, legacy: bool = False) -> bytes:
    torch.save(obj, path, pickle_module=numpy_named_pickle_module(multiarray),
               _use_new_zipfile_serialization=not legacy)
    return path.read_bytes()


def build_module(variant: str, seed: int) -> PoseShapeModule:
    """The tiny TCMR-like / VIBE-like model of ``training_helpers.tiny_config``, random weights."""
    _, _, encoder_args = ENCODERS[variant]
    encoder_class = TCMREncoder if variant == "tcmr" else VIBEEncoder
    module_class = PoseShapeModule if variant == "tcmr" else VIBEModule
    extra = {"discriminator_hidden_size": 8, "discriminator_attention_size": 8} if variant == "vibe" else {}
    torch.manual_seed(seed)
    module = module_class(lambda dim, seq_len: encoder_class(dim, seq_len, **encoder_args),
                          feature_dim=FEATURE_DIM, seq_len=SEQ_LEN,
                          regressor_hidden_size=REGRESSOR_HIDDEN, **extra)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.3)
    return module


def released_layout(module: PoseShapeModule, performance: np.generic) -> dict:
    """``Trainer.save_model``'s dict of TCMR / VIBE for ``module``'s weights."""
    generator = {f"encoder.{k}": v for k, v in module.encoder.state_dict().items()}
    generator |= {f"regressor.{k}": v for k, v in module.regressor.state_dict().items()}
    generator |= {"regressor.smpl.betas": torch.zeros(1, 10),
                  "regressor.smpl.shapedirs": torch.zeros(6890, 3, 10),
                  "regressor.smpl.vertex_joint_selector.extra_joints_idxs": torch.arange(21)}
    generator_parameters = list(module.encoder.parameters()) + list(module.regressor.parameters())
    optimizer = torch.optim.Adam(generator_parameters, lr=5e-5)
    for parameter in generator_parameters:
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    discriminator = getattr(module, "discriminator", None)
    disc_state = {} if discriminator is None else discriminator.state_dict()
    return {"epoch": 12, "gen_state_dict": generator, "performance": performance,
            "gen_optimizer": optimizer.state_dict(), "disc_motion_state_dict": disc_state,
            "disc_motion_optimizer": {}}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("multiarray", [NUMPY_1, NUMPY_2], ids=["numpy1", "numpy2"])
def test_numpy_scalars_load_under_both_numpy_names(tmp_path, multiarray, legacy):
    payload = {"performance": np.float64(52.7), "loss": np.float32(0.25), "epoch": np.int64(3),
               "best": np.bool_(True), "weights": torch.arange(4.0)}
    data = save_with_numpy_names(payload, tmp_path / "f.pth.tar", multiarray, legacy)
    assert f"{multiarray}\nscalar".encode() in data
    with pytest.raises(pickle.UnpicklingError, match=rf"{multiarray}\.scalar"):
        torch.load(tmp_path / "f.pth.tar", weights_only=True)  # what the fix is for
    loaded = load_torch_file(tmp_path / "f.pth.tar")
    assert loaded["performance"] == np.float64(52.7) and loaded["performance"].dtype == np.float64
    assert loaded["loss"].dtype == np.float32 and loaded["epoch"] == 3 and loaded["best"]
    assert torch.equal(loaded["weights"], torch.arange(4.0))


def test_only_numpy_scalars_are_allowed(tmp_path):
    save_with_numpy_names({"array": np.zeros(3)}, tmp_path / "array.pth.tar", NUMPY_2)
    with pytest.raises(pickle.UnpicklingError, match="_reconstruct"):
        load_torch_file(tmp_path / "array.pth.tar")
    save_with_numpy_names({"c": np.complex128(1j)}, tmp_path / "complex.pth.tar", NUMPY_2)
    with pytest.raises(pickle.UnpicklingError, match="Complex128DType"):
        load_torch_file(tmp_path / "complex.pth.tar")
    # The allowance is scoped to the call: plain torch.load stays strict afterwards.
    save_with_numpy_names({"p": np.float64(1.0)}, tmp_path / "p.pth.tar", NUMPY_2)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "p.pth.tar", weights_only=True)


def reference_metrics(module: PoseShapeModule, split: Path, edge_mode: str) -> dict[str, float]:
    """The test metrics of ``module`` computed here, clip by clip (independently of the CLI)."""
    module.hparams.edge_mode = edge_mode
    module.eval()
    protocol = get_protocol("synthetic")
    metrics = build_metrics(protocol)
    for clip in iterate_clips(split):
        features = torch.from_numpy(clip["features"]).float()
        pred = module.predict_frames(features, protocol)
        pose, shape = torch.from_numpy(clip["pose"]), torch.from_numpy(clip["shape"])
        with torch.no_grad():
            gt_vertices = module.ground_truth_vertices(pose, shape)
        gt_joints = target_joints(protocol, torch.from_numpy(clip["kp3d"]), clip["meta"]["joints3d"])
        update_metrics(metrics, pred["joints"], gt_joints, torch.from_numpy(clip["valid"]).bool(),
                       pred["vertices"], gt_vertices)
    return {name: value.item() for name, value in metrics.compute().items()}


def shipped_config_args(variant: str, shards: Path, run_root: Path, released: Path) -> list[str]:
    """``configs/experiment/released_<variant>.yaml`` with the model shrunk to the tiny sizes of
    ``training_helpers`` and the paths pointed at this test's files."""
    _, _, encoder_args = ENCODERS[variant]
    args = ["--config", str(REPO / "configs" / "experiment" / f"released_{variant}.yaml"),
            "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--run.root", str(run_root), "--model.init_args.body_model", "mannequin",
            "--model.init_args.allow_mannequin_on_real_data", "true",  # toy shards
            "--model.init_args.regressor_hidden_size", str(REGRESSOR_HIDDEN),
            "--model.init_args.released_checkpoint", str(released),
            "--model.init_args.eval_protocols", "{toy: synthetic}",
            "--data.test_datasets", f"{{toy: {shards / 'val'}}}", "--data.seq_len", str(SEQ_LEN),
            "--data.num_workers", "0"]
    args += [f"--model.init_args.encoder.init_args.{k}={v}" for k, v in encoder_args.items()]
    if variant == "vibe":
        args += ["--model.init_args.discriminator_hidden_size", "8",
                 "--model.init_args.discriminator_attention_size", "8"]
    return args


@pytest.mark.parametrize(("variant", "multiarray", "legacy"),
                         [("tcmr", NUMPY_1, False), ("vibe", NUMPY_2, True)])
def test_released_file_evaluates_through_the_cli(tiny_shards, tmp_path, variant, multiarray,
                                                 legacy):
    module = build_module(variant, seed=5)
    performance = np.float64(52.7) if variant == "tcmr" else np.float32(56.56)
    released = tmp_path / f"{variant}_model.pth.tar"
    save_with_numpy_names(released_layout(module, performance), released, multiarray, legacy)

    cli = STRLightningCLI(args=["test", *shipped_config_args(variant, tiny_shards, tmp_path,
                                                             released)])
    assert cli.model.hparams.edge_mode == ("tcmr" if variant == "tcmr" else "replicate")
    for key, value in module.encoder.state_dict().items():
        assert torch.equal(cli.model.encoder.state_dict()[key], value), key
    logged = {k: v.item() for k, v in cli.trainer.callback_metrics.items()}
    expected = reference_metrics(module, tiny_shards / "val", cli.model.hparams.edge_mode)
    for name in ("mpjpe", "pa_mpjpe", "accel", "mpvpe"):
        assert logged[f"test/toy/{name}"] == pytest.approx(expected[name], rel=1e-4), name
    results = RunDirectory.of({"root": tmp_path, "project": "released", "experiment": variant}, 0).results_csv.read_text()
    assert results.startswith("dataset,") and "\ntoy," in results
    if variant == "tcmr":  # TCMR's edge rule was evaluated: the default one gives other figures
        replicate = reference_metrics(module, tiny_shards / "val", "replicate")
        assert abs(replicate["mpjpe"] - expected["mpjpe"]) > 1e-3


def test_a_released_file_of_other_sizes_is_a_clear_error(tiny_shards, tmp_path):
    module = build_module("tcmr", seed=1)
    released = tmp_path / "tcmr.pth.tar"
    torch.save(released_layout(module, np.float64(1.0)), released)
    config = tiny_config(tiny_shards, tmp_path, "tcmr")
    config["model"]["init_args"]["regressor_hidden_size"] = 32
    with pytest.raises(ValueError, match=r"tcmr\.pth\.tar: the released regressor does not fit"):
        STRLightningCLI(args=["test", "--config", str(write_config(config, tmp_path / "c.yaml")),
                              "--model.init_args.released_checkpoint", str(released)])
