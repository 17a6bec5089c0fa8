"""The compiled step (``compile: true``): one graph per training step and per batch of evaluation
windows, the same losses as eager mode over 20 optimizer steps, under bf16 autocast and DDP.

Most tests compile with the ``aot_eager`` backend, in seconds: TorchDynamo's capture (the GRUs
traced into the graph) and AOTAutograd's forward and backward graphs, run by eager kernels.
One slow test compiles with the default backend, Inductor, whose CPU kernels take minutes to
build on 2 cores (with ``fallback_random``: dropout draws the numbers eager mode draws).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch._dynamo
import yaml
from cli_runners import run_command
from lightning.pytorch import Callback, LightningDataModule, Trainer
from test_host_syncs import DIM, ENCODERS, SEQ_LEN, build, training_batch
from torch._dynamo.testing import CompileCounter
from torch.utils.data import DataLoader
from training_helpers import tiny_config, tiny_run_dir, write_config

from str_lightning.evaluation.inference import predict_windows
from str_lightning.modules import PoseShapeModule, VIBEModule

AOT_EAGER = {"backend": "aot_eager"}
INDUCTOR_SAME_DROPOUT = {"options": {"fallback_random": True}}
GRU_BREAK = "RNN, GRU, or LSTM"


def explain(function, *args):
    torch._dynamo.reset()
    try:
        return torch._dynamo.explain(function)(*args)
    finally:
        torch._dynamo.reset()


def test_the_graph_breaks_only_at_the_grus_and_not_at_all_with_allow_rnn():
    """TorchDynamo's default stops at every GRU call (STR: 9 breaks, 10 graphs) and nowhere
    else; with ``allow_rnn``, as the switch compiles, it does not stop."""
    module = build("str", "mannequin", "cpu")
    batch = training_batch("cpu")
    plain = explain(module.compute_losses, batch)
    reasons = [reason.reason for reason in plain.break_reasons]
    assert plain.graph_break_count > 0 and reasons
    assert all(GRU_BREAK in reason for reason in reasons), reasons
    with torch._dynamo.config.patch(allow_rnn=True):
        traced = explain(module.compute_losses, batch)
    assert (traced.graph_count, traced.graph_break_count) == (1, 0), traced.break_reasons


@pytest.mark.parametrize("encoder", ENCODERS)
def test_a_compiled_training_step_is_one_graph(encoder):
    """Through the switch: one graph per compiled function (VIBE-like compiles two, its
    generator's and its discriminator's losses), i.e. no graph break."""
    counter = CompileCounter()
    module = build(encoder, "mannequin", "cpu", VIBEModule if encoder == "vibe" else PoseShapeModule)
    module.hparams.update(compile=True, compile_options={"backend": counter})
    batch = training_batch("cpu")
    torch._dynamo.reset()
    if encoder == "vibe":
        _, fake = module.compiled(module.generator_losses)(batch)
        module.compiled(module.discriminator_loss)(batch["pose"], fake.detach())
        assert counter.frame_count == 2
    else:
        module.compiled(module.compute_losses)(batch)
        assert counter.frame_count == 1
    torch._dynamo.reset()


@pytest.mark.parametrize("encoder", ["str", "vibe"])
def test_compiled_evaluation_is_one_graph_per_window_batch(encoder):
    """The switch's own compilation: one graph for every full batch of windows; a shorter last
    batch adds one with a dynamic batch size, another protocol one more; the predictions equal
    eager mode's."""
    counter = CompileCounter()
    module = build(encoder, "mannequin", "cpu").eval()
    module.hparams.update(eval_window_batch=8, compile=True, compile_options={"backend": counter})
    torch._dynamo.reset()
    sequences = [torch.randn(frames, 32) for frames in (16, 21, 30)]
    for protocol in ("synthetic", "mpii3d"):
        for sequence in sequences:
            compiled = module.predict_frames(sequence, module.protocol(protocol))
            module.hparams.compile = False
            eager = module.predict_frames(sequence, module.protocol(protocol))
            module.hparams.compile = True
            torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    assert 2 <= counter.frame_count <= 4  # per protocol: full batches, any other batch size
    torch._dynamo.reset()


def test_an_option_torch_compile_does_not_take_is_refused_when_the_model_is_built():
    with pytest.raises(ValueError, match=r"compile_options: torch.compile takes no \['mod'\]"):
        PoseShapeModule(ENCODERS["tcmr"], feature_dim=DIM, seq_len=SEQ_LEN,
                        regressor_hidden_size=16, compile=True, compile_options={"mod": "max"})


def test_switched_off_nothing_is_compiled():
    module = build("str", "mannequin", "cpu")
    assert module.compiled(module.compute_losses) == module.compute_losses
    assert module.compiled(predict_windows) is predict_windows


def constant_learning_rate(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


class InMemoryData(LightningDataModule):
    """Training batches in memory; VIBE's real motion windows are their poses, reversed."""

    def __init__(self, batches: list[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.batches = batches

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.batches, batch_size=None)

    def motion_dataloader(self) -> DataLoader:
        return DataLoader([{"pose": batch["pose"].flip(0)} for batch in self.batches],
                          batch_size=None)


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(loss.item())


def fit_losses(encoder: str, compile_options: dict | None, steps: int = 20,
               precision: str = "32-true") -> list[float]:
    """Losses of ``steps`` optimizer steps with ``Trainer.fit``, from the same start and data."""
    torch.manual_seed(0)
    module_class = VIBEModule if encoder == "vibe" else PoseShapeModule
    module = module_class(ENCODERS[encoder], feature_dim=DIM, seq_len=SEQ_LEN,
                          regressor_hidden_size=16, scheduler=constant_learning_rate,
                          compile=compile_options is not None, compile_options=compile_options)
    data = InMemoryData([training_batch("cpu", seed) for seed in range(steps)])
    recorder = LossRecorder()
    trainer = Trainer(accelerator="cpu", max_steps=steps * (2 if encoder == "vibe" else 1),
                      max_epochs=1, precision=precision, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder],
                      limit_val_batches=0, num_sanity_val_steps=0)
    torch.manual_seed(1)  # the dropout masks
    torch._dynamo.reset()
    trainer.fit(module, datamodule=data)
    torch._dynamo.reset()
    assert len(recorder.losses) == steps
    return recorder.losses


def test_compiled_training_takes_the_steps_eager_training_takes():
    eager = fit_losses("str", None)
    compiled = fit_losses("str", AOT_EAGER)
    assert eager[-1] != eager[0]
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=0)


def test_compiled_training_under_bf16_autocast_follows_eager():
    eager = fit_losses("str", None, steps=5, precision="bf16-mixed")
    compiled = fit_losses("str", AOT_EAGER, steps=5, precision="bf16-mixed")
    torch.testing.assert_close(compiled, eager, rtol=1e-2, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["tcmr", "vibe"])
def test_every_compiled_training_step_takes_the_eager_steps(encoder):
    """VIBE-like: its generator and discriminator losses, compiled apart, in manual optimisation."""
    torch.testing.assert_close(fit_losses(encoder, AOT_EAGER), fit_losses(encoder, None),
                               rtol=1e-4, atol=0)


@pytest.mark.slow
def test_inductor_training_takes_the_steps_eager_training_takes():
    """Inductor's own kernels (minutes to build on 2 cores), dropout drawn as eager mode draws."""
    torch.testing.assert_close(fit_losses("str", INDUCTOR_SAME_DROPOUT), fit_losses("str", None),
                               rtol=1e-4, atol=0)


@pytest.mark.slow
def test_compiled_ddp_training_matches_eager_ddp_training(tiny_shards, tmp_path):
    """A real run: the CLI's fit on 2 Gloo processes, compiled and eager, then validation;
    every logged training loss and validation metric agree."""
    logged = {}
    for name, compile_options in (("eager", None), ("compiled", AOT_EAGER)):
        config = tiny_config(tiny_shards, tmp_path / name, max_steps=4, steps_per_epoch=2,
                             logger=True)
        config["trainer"]["log_every_n_steps"] = 1
        config["model"]["init_args"].update(compile=compile_options is not None,
                                            compile_options=compile_options)
        path = write_config(config, tmp_path / f"{name}.yaml")
        fit = run_command("fit", "--config", str(path), "--trainer.strategy=ddp",
                          "--trainer.devices=2", "--trainer.accelerator=cpu", timeout=600)
        assert fit.returncode == 0, fit.stderr[-3000:]
        csv_root = tiny_run_dir(tmp_path / name) / "csv"
        hparams = yaml.safe_load((csv_root / "version_0" / "hparams.yaml").read_text())
        assert hparams["compile"] is (compile_options is not None)
        logged[name] = logged_values(csv_root)
    assert any(key.startswith("train/loss") for key, _ in logged["eager"])
    assert any(key.startswith("val/") for key, _ in logged["eager"])
    assert logged["compiled"].keys() == logged["eager"].keys()
    for key, value in logged["eager"].items():
        assert logged["compiled"][key] == pytest.approx(value, rel=1e-4), key


def logged_values(csv_root: Path) -> dict[tuple[str, int], float]:
    """Every value of the newest CSVLogger version under ``csv_root``, by (key, step)."""
    newest = max(csv_root.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    with open(newest / "metrics.csv") as fh:
        return {(key, int(row["step"])): float(value) for row in csv.DictReader(fh)
                for key, value in row.items() if key not in ("step", "epoch") and value}
