"""The LightningModule shared by every temporal encoder (STR, TCMR-like, VIBE-like).

Training supervises the encoder's target frames (the middle frame, or all frames) with the paper's
loss; encoders that return auxiliary features in training (TCMR's past/future, STR's F_SF/F_CF)
have them regressed and supervised against the same targets. Validation and test run
whole-sequence inference on every sequence and update one metric collection per dataset with the
dataset's protocol. The body model lives inside the regressor and never enters a checkpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import SumMetric

from str_lightning.body import MANNEQUIN
from str_lightning.body.joints import NUM_SMPL_JOINTS
from str_lightning.evaluation.inference import predict_sequence, predict_windows
from str_lightning.evaluation.protocols import (
    EvaluationProtocol,
    build_metrics,
    get_protocol,
    predicted_joints,
    target_joints,
    update_metrics,
)
from str_lightning.geometry import axis_angle_to_rotmat
from str_lightning.modules.compilation import check_compile_options, compile_function
from str_lightning.modules.losses import LossWeights, PoseShapeLoss
from str_lightning.modules.optimization import with_fused_step
from str_lightning.nets import Regressor, RegressorOutput, load_released_generator
from str_lightning.nets.initialisation import initialise_by_name
from str_lightning.runs.guards import RunRefused

EncoderFactory = Callable[[int, int], nn.Module]
SchedulerInterval = Literal["epoch", "step"]
P = ParamSpec("P")
R = TypeVar("R")
EVAL_STAGES = ("val", "test")
DEFAULT_LOSS_WEIGHTS = {"kp2d": 300.0, "kp3d": 300.0, "pose": 60.0, "shape": 0.06}
_GT_MESH_CHUNK = 256  # frames per body-model call when building ground-truth meshes


class PoseShapeModule(LightningModule):
    """A temporal encoder plus the SPIN regressor, trained with the paper's loss (docs/training.md).

    Args:
        encoder: builds the encoder from ``(feature_dim, seq_len)``; in configs a
            ``class_path`` such as ``str_lightning.nets.STREncoder`` with its other ``init_args``.
        feature_dim, seq_len: input size and window length (linked from the data by the CLI).
        body_model: ``"mannequin"`` or a directory of SMPL files.
        regressor_hidden_size: width of the regressor's fc1/fc2 (1024 in the paper).
        spin_checkpoint: optional SPIN checkpoint whose regressor weights initialise ours.
        released_checkpoint: optional released TCMR/VIBE ``.pth.tar`` whose generator
            (``gen_state_dict``) initialises the encoder and the regressor, strictly (after
            ``spin_checkpoint``; docs/evaluation.md).
        loss_weights: ``kp2d``, ``kp3d``, ``pose``, ``shape`` (300 / 300 / 60 / 0.06).
        supervise_auxiliary: also supervise the encoder's auxiliary features in training.
        optimizer, scheduler: injected; defaults Adam(lr 5e-5) and ReduceLROnPlateau(x0.1,
            patience 5) stepped on ``monitor`` after every validation.
        scheduler_interval: ``"epoch"`` (after every validation; ReduceLROnPlateau reads
            ``monitor``) or ``"step"`` (after every optimizer step, e.g. ``OneCycleLR``'s warm-up
            and cosine decay). A scheduler argument ``total_steps`` left unset is filled with
            the run's number of optimizer steps (``Trainer.estimated_stepping_batches``).
        init_seed: the seed of the initial weights, drawn per layer name
            (:func:`~str_lightning.nets.initialisation.initialise_by_name`): runs with the same
            seed start with the same weights in every layer they share. None: the seed torch
            was last seeded with (``seed_everything``, the run's seed).
        monitor: metric key the scheduler (and usually checkpointing) follows.
        eval_protocols: evaluation dataset name -> protocol name; names not listed use the
            protocol of the same name (``3dpw``, ``mpii3d``, ``h36m``, ``synthetic``).
        edge_mode, eval_window_batch: whole-sequence inference settings (docs/evaluation.md);
            ``eval_window_batch`` None: 128 windows on the CPU, the windows of 1024 predicted
            frames on a GPU.
        allow_mannequin_on_real_data: with ``body_model: mannequin``, ``setup`` refuses data the
            datamodule reports as not the synthetic benchmark (its ``real_data_splits(stage)``):
            the mannequin is not SMPL, so its joints and meshes cannot be compared with real
            targets. True runs anyway, on purpose (e.g. a smoke test on real shards).
        compile: run the training step (forward and loss; the backward pass is compiled with
            them) and each batch of evaluation windows through ``torch.compile``, with the
            GRUs inside the graph (:mod:`~str_lightning.modules.compilation`; docs/training.md,
            "Compiled steps"). Off (the default): eager PyTorch.
        compile_options: keyword arguments of ``torch.compile`` when ``compile`` is on, e.g.
            ``{"mode": "reduce-overhead"}`` (CUDA graphs) or ``{"backend": "aot_eager"}``;
            a key it does not take is refused when the model is built.
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        feature_dim: int = 2048,
        seq_len: int = 16,
        body_model: str = "mannequin",
        regressor_hidden_size: int = 1024,
        spin_checkpoint: str | None = None,
        released_checkpoint: str | None = None,
        loss_weights: dict[str, float] | None = None,
        supervise_auxiliary: bool = True,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        monitor: str = "val/synthetic/pa_mpjpe",
        eval_protocols: dict[str, str] | None = None,
        edge_mode: str = "replicate",
        eval_window_batch: int | None = None,
        allow_mannequin_on_real_data: bool = False,
        scheduler_interval: SchedulerInterval = "epoch",
        init_seed: int | None = None,
        compile: bool = False,
        compile_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        check_compile_options(compile_options)
        self.save_hyperparameters()
        _drop_python_objects(self.hparams, ("encoder", "optimizer", "scheduler"))
        self.hparams.init_seed = torch.initial_seed() if init_seed is None else init_seed
        with torch.random.fork_rng(devices=[]):  # the draws of construction are replaced below
            self.encoder = encoder(feature_dim, seq_len)
            self.regressor = Regressor(feature_dim, regressor_hidden_size, body_model=body_model)
        initialise_by_name(self, self.hparams.init_seed)
        if spin_checkpoint:
            from str_lightning.nets import load_spin_checkpoint

            self.regressor.load_spin_state_dict(load_spin_checkpoint(spin_checkpoint))
        if released_checkpoint:
            load_released_generator(released_checkpoint, self.encoder, self.regressor)
        self.criterion = PoseShapeLoss(LossWeights(**{**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}))
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.eval_protocols = dict(eval_protocols or {})
        self.eval_metrics = nn.ModuleDict({stage: nn.ModuleDict() for stage in EVAL_STAGES})
        self.frame_counts = nn.ModuleDict({stage: nn.ModuleDict() for stage in EVAL_STAGES})
        self._eval_names: dict[str, list[str]] = {stage: [] for stage in EVAL_STAGES}
        self._compiled_functions: dict[Callable, Callable] = {}

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        self._refuse_mannequin_on_real_data(datamodule, stage)
        for eval_stage in EVAL_STAGES:
            names = list(getattr(datamodule, f"{eval_stage}_names", []) or [])
            self._eval_names[eval_stage] = names
            for name in names:
                if name not in self.eval_metrics[eval_stage]:
                    protocol = self.protocol(name)
                    self.eval_metrics[eval_stage][name] = build_metrics(protocol, f"{eval_stage}/{name}/")
                    self.frame_counts[eval_stage][name] = SumMetric(nan_strategy="disable")

    def _refuse_mannequin_on_real_data(self, datamodule: Any, stage: str) -> None:
        if self.hparams.body_model != MANNEQUIN or self.hparams.allow_mannequin_on_real_data:
            return
        real_data_splits = getattr(datamodule, "real_data_splits", None)
        splits = real_data_splits(stage) if real_data_splits else []
        if splits:
            raise RunRefused(
                f"body_model is 'mannequin', but the {getattr(stage, 'value', stage)} data is not the synthetic benchmark "
                f"(made by `str-lightning synth`): {splits}. The mannequin is a stand-in body, not "
                "SMPL: its joints and meshes do not match real targets, so losses and metrics "
                "would be meaningless. Set model.init_args.body_model to your SMPL directory "
                "(docs/body.md), or, to run with the mannequin on purpose (e.g. a smoke test), "
                "set model.init_args.allow_mannequin_on_real_data true.")

    def protocol(self, dataset: str) -> EvaluationProtocol:
        """The evaluation protocol of ``dataset`` (see ``eval_protocols``)."""
        return get_protocol(self.eval_protocols.get(dataset, dataset))

    def generator_parameters(self) -> list[nn.Parameter]:
        """The parameters the main optimizer trains (encoder and regressor)."""
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self) -> dict[str, Any]:
        params = self.generator_parameters()
        optimizer = with_fused_step(self.optimizer_factory(params) if self.optimizer_factory
                                    else torch.optim.Adam(params, lr=5e-5))
        if self.scheduler_factory is None:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5)
        else:
            scheduler = self._scheduler(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor,
                             "interval": self.hparams.scheduler_interval, "strict": True},
        }

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        length = self._schedule_length()
        try:
            return self.scheduler_factory(optimizer, **length)
        except ZeroDivisionError as error:  # e.g. OneCycleLR whose warm-up is under 2 steps
            steps = length.get("total_steps", "its configured")
            raise RunRefused(
                f"model.init_args.scheduler cannot be laid over {steps} optimizer steps: one of its "
                "phases would be shorter than 2 steps (for OneCycleLR, pct_start x total_steps < 2). "
                "Train for more steps (--trainer.max_steps / --trainer.max_epochs) or lengthen "
                "the phase (e.g. a larger pct_start).") from error

    def _schedule_length(self) -> dict[str, int]:
        """``total_steps`` for a configured scheduler that takes it but was given none."""
        configured = getattr(self.scheduler_factory, "keywords", {})
        if "total_steps" in configured and configured["total_steps"] is None:
            return {"total_steps": int(self.trainer.estimated_stepping_batches)}
        return {}

    def compiled(self, function: Callable[P, R]) -> Callable[P, R]:
        """``function`` (a method of this module, or a plain function) compiled once per
        function when ``compile`` is on, else ``function`` itself. A method is compiled as the
        class's function, with the module an argument: copies of the module share it."""
        if not self.hparams.compile:
            return function
        unbound = getattr(function, "__func__", function)
        if unbound not in self._compiled_functions:
            self._compiled_functions[unbound] = compile_function(unbound, self.hparams.compile_options)
        compiled = self._compiled_functions[unbound]
        owner = getattr(function, "__self__", None)
        return compiled if owner is None else functools.partial(compiled, owner)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        terms, _ = self.compiled(self.compute_losses)(batch)
        size = batch["features"].shape[0]
        self.log_dict({f"train/loss/{k}": v.detach() for k, v in terms.items()}, batch_size=size,
                      prog_bar=False)
        self.log("train/loss", terms["total"].detach(), batch_size=size, prog_bar=True)
        return terms["total"]

    def compute_losses(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], RegressorOutput]:
        """The weighted loss terms of a training batch (see :mod:`str_lightning.modules.losses`) and the
        prediction, whose first rows are the target frames (B, or B * T for an encoder output at
        every frame). Every supervised row weighs the same in each term's mean."""
        output = self.encoder(batch["features"], train=True)
        heads = [output.features]
        if self.hparams.supervise_auxiliary:
            heads += list(output.auxiliary.values())
        rows = torch.cat([head.reshape(-1, head.shape[-1]) for head in heads])
        prediction = self.regressor(rows, with_vertices=False)
        per_head = [self.training_targets(batch, head) for head in heads]
        target = {k: torch.cat([head_target[k] for head_target in per_head]) for k in per_head[0]}
        loss_inputs = {"kp2d": prediction.joints2d, "kp3d": prediction.joints,
                       "rotmat": prediction.rotmat, "betas": prediction.betas}
        return self.criterion(loss_inputs, target), prediction

    def training_targets(self, batch: dict[str, Tensor], head: Tensor) -> dict[str, Tensor]:
        """Targets of the frames one encoder output predicts, one row per predicted frame.

        Its shape says which (the encoder interface): ``(B, D)`` the middle frame of each
        window, ``(B, T, D)`` every frame. In one batch they may differ: STR supervised at every
        frame returns Z per frame and F_SF / F_CF for the middle frame.
        """
        keys = ("kp2d", "kp3d", "pose", "shape", "w_kp2d", "w_kp3d", "w_smpl")
        if head.dim() == 2:
            middle = batch["features"].shape[1] // 2
            return {k: batch[k][:, middle] for k in keys}
        if head.dim() == 3:
            return {k: batch[k].flatten(0, 1) for k in keys}
        raise ValueError(f"{type(self.encoder).__name__} returned training features of shape "
                         f"{tuple(head.shape)}; expected (B, D) for the middle frame or "
                         f"(B, T, D) for every frame")

    # ------------------------------------------------------------------ evaluation
    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val", dataloader_idx)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "test", dataloader_idx)

    def on_train_start(self) -> None:
        for collection in self.eval_metrics["val"].values():
            collection.reset()  # the sanity check must not leak into epoch 0

    def _evaluate(self, item: dict[str, Any], stage: str, dataloader_idx: int) -> None:
        """Update the dataset's metrics with one whole sequence (an evaluation item, docs/data.md).

        Padding items (``is_padding``) only keep the number of steps equal across ranks.
        """
        name = self._eval_names[stage][dataloader_idx]
        protocol, metrics = self.protocol(name), self.eval_metrics[stage][name]
        frames = self.frame_counts[stage][name]
        if not item["is_padding"]:
            pred = self.predict_frames(item["features"], protocol)
            gt_joints = target_joints(protocol, item["kp3d"], item["joints3d"])
            gt_vertices = None
            if "mpvpe" in protocol.metrics:
                if "pose" not in item:
                    raise ValueError(f"{name}: protocol {protocol.name!r} reports MPVPE, but "
                                     f"sequence {item['sequence']} has no SMPL pose/shape")
                gt_vertices = self.ground_truth_vertices(item["pose"], item["shape"])
            update_metrics(metrics, pred["joints"], gt_joints, item["valid"],
                           pred.get("vertices"), gt_vertices)
            frames.update(item["valid"].sum())
        size = max(1, len(item["valid"]))  # metric objects ignore it; a count would wait on a GPU
        logged = dict(metrics.items(keep_base=False, copy_state=False))
        monitored = {k: v for k, v in logged.items() if k == self.hparams.monitor}
        self.log_dict({k: v for k, v in logged.items() if k not in monitored}, on_epoch=True,
                      add_dataloader_idx=False, batch_size=size)
        if monitored:  # the metric the run follows is shown in the progress bar
            self.log_dict(monitored, on_epoch=True, add_dataloader_idx=False, batch_size=size,
                          prog_bar=True)
        self.log(f"{stage}/{name}/frames", frames, on_epoch=True, add_dataloader_idx=False)

    def predict_frames(self, features: Tensor, protocol: EvaluationProtocol | None = None) -> dict[str, Tensor]:
        """Whole-sequence inference for one sequence ``(N, D)``: one row per frame.

        Returns ``pose`` (N, 72), ``betas``, ``cam``, ``joints`` (N, 49, 3) spin49 — or the
        protocol's evaluation joints when ``protocol`` is given — and ``vertices`` when the
        protocol reports MPVPE (always without a protocol).
        """
        def regress(target_features: Tensor) -> dict[str, Tensor]:
            out = self.regressor(target_features)
            rows = {"pose": out.pose, "betas": out.betas, "cam": out.cam}
            if protocol is None:
                rows.update(joints=out.joints, vertices=out.vertices)
                return rows
            rows["joints"] = predicted_joints(protocol, self.regressor.body, out.vertices, out.joints)
            if "mpvpe" in protocol.metrics:
                rows["vertices"] = out.vertices
            return rows

        return predict_sequence(self.encoder, regress, features, self.hparams.edge_mode,
                                self.hparams.eval_window_batch, self.compiled(predict_windows))

    def ground_truth_vertices(self, pose: Tensor, betas: Tensor) -> Tensor:
        """Meshes ``(N, 6890, 3)`` of ground-truth SMPL parameters with this model's body."""
        chunks = []
        for start in range(0, pose.shape[0], _GT_MESH_CHUNK):
            rotmat = axis_angle_to_rotmat(pose[start:start + _GT_MESH_CHUNK].reshape(-1, NUM_SMPL_JOINTS, 3))
            chunks.append(self.regressor.body(rotmat, betas[start:start + _GT_MESH_CHUNK]).vertices)
        return torch.cat(chunks)

    # ------------------------------------------------------------------ prediction
    def predict_step(self, item: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict | None:
        """Per-frame predictions of one sequence as numpy arrays: ``pose`` (N, 72) axis-angle,
        ``betas``, ``cam``, ``joints_spin49`` (N, 49, 3), ``joints_h36m17`` (N, 17, 3) (the
        evaluation joints, ``J_regressor_h36m`` on the mesh), ``vertices`` and ``frame_id``,
        with the ``sequence`` and ``dataset`` names and the ``fps``; None for a padding item."""
        if item["is_padding"]:
            return None
        rows = self.predict_frames(item["features"])
        rows["joints_spin49"] = rows.pop("joints")
        rows["joints_h36m17"] = self.regressor.body.eval_joints(rows["vertices"], "h36m17")
        arrays = {k: v.cpu().numpy() for k, v in rows.items()}
        arrays["frame_id"] = item["frame_id"].cpu().numpy()
        return {**arrays, "sequence": item["sequence"], "dataset": item["dataset"],
                "fps": item["fps"]}


def _drop_python_objects(hparams: dict, keys: tuple[str, ...]) -> None:
    """Keep injected components in the hyperparameters only as configs (plain dicts).

    Under LightningCLI they are the config the CLI parsed, which checkpoints store and
    ``--ckpt_path`` restores; built in Python they are callables, which a checkpoint loaded with
    ``weights_only=True`` could not hold.
    """
    for key in keys:
        if key in hparams and not isinstance(hparams[key], (dict, str, type(None))):
            del hparams[key]
