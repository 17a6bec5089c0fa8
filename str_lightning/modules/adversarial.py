"""VIBE-like training: the generator loss plus an adversarial motion prior (docs/str.md).

A motion discriminator (GRU + attention pooling) scores windows of body pose (axis-angle without
the global orientation, ``(B, T, 69)``). LSGAN losses with weight 0.5: the generator is pushed to
make its predicted windows score 1; the discriminator, with its own Adam (lr 1e-4, wd 1e-4),
learns real motion windows -> 1 and detached predictions -> 0, updated once after every
generator step. Real windows come from the DataModule's ``motion_dataloader()``.

Lightning counts every optimizer step in ``global_step``: one training batch here advances it
by 2 (generator and discriminator), so step-based settings (``max_steps``,
``every_n_train_steps``) count half as many batches as for the other models; epochs
(``steps_per_epoch`` batches each) are the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from str_lightning.body.joints import NUM_POSE_PARAMS
from str_lightning.modules.base import PoseShapeModule
from str_lightning.modules.optimization import with_fused_step
from str_lightning.nets import MotionDiscriminator
from str_lightning.nets.initialisation import initialise_by_name


class VIBEModule(PoseShapeModule):
    """:class:`PoseShapeModule` with VIBE's motion discriminator, trained by manual optimisation.

    Extra args: ``adversarial_weight`` (0.5), ``discriminator_hidden_size`` (1024),
    ``discriminator_layers`` (2), ``discriminator_attention_size`` (1024),
    ``discriminator_lr`` (1e-4), ``discriminator_weight_decay`` (1e-4), ``generator_clip_norm``
    (None: no clipping; else the generator's gradients are clipped to that norm before each of
    its steps; manual optimisation cannot use the trainer's ``gradient_clip_val``). All others as
    the base.
    """

    def __init__(self, *args: Any, adversarial_weight: float = 0.5,
                 discriminator_hidden_size: int = 1024, discriminator_layers: int = 2,
                 discriminator_attention_size: int = 1024, discriminator_lr: float = 1e-4,
                 discriminator_weight_decay: float = 1e-4, generator_clip_norm: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        with torch.random.fork_rng(devices=[]):
            self.discriminator = MotionDiscriminator(
                hidden_size=discriminator_hidden_size, num_layers=discriminator_layers,
                attention_size=discriminator_attention_size,
            )
        initialise_by_name(self.discriminator, self.hparams.init_seed, "discriminator")
        self._real_motion: Iterator[dict[str, Tensor]] | None = None

    def generator_parameters(self) -> list[torch.nn.Parameter]:
        return [p for name, p in self.named_parameters()
                if p.requires_grad and not name.startswith("discriminator.")]

    def configure_optimizers(self) -> tuple[list, list]:
        generator = super().configure_optimizers()
        discriminator = with_fused_step(torch.optim.Adam(
            self.discriminator.parameters(), lr=self.hparams.discriminator_lr,
            weight_decay=self.hparams.discriminator_weight_decay))
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(discriminator, factor=0.1, patience=5)
        return [generator["optimizer"], discriminator], [
            generator["lr_scheduler"], {"scheduler": plateau, "monitor": self.hparams.monitor}]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        gen_opt, disc_opt = self.optimizers()
        terms, fake = self.compiled(self.generator_losses)(batch)
        gen_opt.zero_grad()
        self.manual_backward(terms["total"])
        if self.hparams.generator_clip_norm is not None:
            self.clip_gradients(gen_opt, self.hparams.generator_clip_norm, "norm")
        gen_opt.step()
        if self.hparams.scheduler_interval == "step":
            self.lr_schedulers()[0].step()

        real = self._next_real_motion().to(fake, non_blocking=True)  # pinned on a GPU
        disc_loss = self.compiled(self.discriminator_loss)(real, fake.detach())
        disc_opt.zero_grad()
        self.manual_backward(disc_loss)
        disc_opt.step()

        batch_size = batch["features"].shape[0]
        self.log_dict({f"train/loss/{k}": v.detach() for k, v in terms.items()}, batch_size=batch_size)
        self.log("train/loss", terms["total"].detach(), batch_size=batch_size, prog_bar=True)
        self.log("train/loss/discriminator", disc_loss.detach(), batch_size=batch_size)
        return terms["total"]

    def generator_losses(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """The base loss terms plus ``adversarial`` (in ``total`` too), and the predicted body
        pose windows ``(B, T, 72)`` they were computed from."""
        terms, prediction = self.compute_losses(batch)
        batch_size, seq_len = batch["features"].shape[:2]
        fake = prediction.pose[: batch_size * seq_len].reshape(batch_size, seq_len, NUM_POSE_PARAMS)
        weight = self.hparams.adversarial_weight
        terms["adversarial"] = weight * ((self.discriminator(fake[..., 3:]) - 1) ** 2).mean()
        terms["total"] = terms["total"] + terms["adversarial"]
        return terms, fake

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """LSGAN loss of the discriminator on real and predicted pose windows ``(B, T, 72)``
        (the global orientation is dropped here)."""
        weight = self.hparams.adversarial_weight
        return weight * ((self.discriminator(real[..., 3:]) - 1) ** 2).mean() \
            + weight * (self.discriminator(fake[..., 3:]) ** 2).mean()

    def on_validation_end(self) -> None:
        """Manual optimisation steps no scheduler: step the plateau schedulers (the
        discriminator's, and the generator's unless it steps per batch) once per validation,
        when its epoch metrics have been computed."""
        if self.trainer.sanity_checking:
            return
        value = self.trainer.callback_metrics.get(self.hparams.monitor)
        if value is None:
            return
        generator, discriminator = self.lr_schedulers()
        if self.hparams.scheduler_interval == "epoch":
            generator.step(value)
        discriminator.step(value)

    def _next_real_motion(self) -> Tensor:
        if self._real_motion is None:
            self._real_motion = iter(self.trainer.datamodule.motion_dataloader())
        try:
            return next(self._real_motion)["pose"]
        except StopIteration:
            self._real_motion = iter(self.trainer.datamodule.motion_dataloader())
            return next(self._real_motion)["pose"]
