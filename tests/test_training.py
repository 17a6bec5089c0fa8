"""The training CLI end to end on tiny shards: fit, test, checkpoints, resume, configs."""

from __future__ import annotations

import csv
import logging
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from cli_runners import STR_LIGHTNING_COMMAND, command_environment, run_cli_in_process, run_command
from helpers import recipes
from training_helpers import batch_fingerprints, tiny_config, tiny_run_dir, write_config

from str_lightning.app.config_errors import ConfigError
from str_lightning.app.lightning_cli import STRLightningCLI, cli_on, run_lightning
from str_lightning.modules import PoseShapeModule
from str_lightning.nets import STREncoder
from str_lightning.runs.checkpoints import weights_digest
from str_lightning.runs.directory import RunDirectory
from str_lightning.runs.guards import RunRefused

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
CONFIG_FILES = recipes(CONFIGS)  # each a tuple of files given in order (ablation rows: two)


@pytest.mark.parametrize("config", CONFIG_FILES,
                         ids=lambda files: " + ".join(str(p.relative_to(CONFIGS)) for p in files))
def test_every_experiment_and_ablation_config_prints(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli_in_process("fit", *(arg for path in config for arg in ("--config", str(path))),
                           "--print_config")
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: str_lightning.modules." in printed and "run:" in printed


def printed_config(config: Path, capsys) -> dict:
    """The complete config the CLI would run for ``config``."""
    with pytest.raises(SystemExit):
        run_cli_in_process("fit", "--config", str(config), "--print_config")
    return yaml.safe_load(capsys.readouterr().out)


def test_single_frame_control_differs_from_synthetic_str_only_in_encoder_and_name(capsys):
    experiments = REPO / "configs" / "experiment"
    control = printed_config(experiments / "synthetic_single_frame.yaml", capsys)
    str_run = printed_config(experiments / "synthetic_str.yaml", capsys)
    assert control["model"]["init_args"].pop("encoder")["class_path"] == "str_lightning.nets.SingleFrameEncoder"
    str_run["model"]["init_args"].pop("encoder")
    assert (control["run"].pop("experiment"), str_run["run"].pop("experiment")) == ("single_frame", "str")
    assert control == str_run  # same data, budget, loss, optimizer, schedule, trainer and seed


@pytest.mark.parametrize("variant", ["str", "tcmr", "vibe", "single_frame"])
def test_each_variant_fits_then_tests_from_its_checkpoint(variant, tiny_shards, tmp_path):
    # Lightning counts every optimizer step: VIBE-like steps generator and discriminator.
    optimizers = 2 if variant == "vibe" else 1
    config = write_config(tiny_config(tiny_shards, tmp_path, variant, max_steps=3 * optimizers),
                          tmp_path / "c.yaml")
    fit = run_cli_in_process("fit", "--config", str(config))
    assert fit.trainer.global_step == 3 * optimizers
    assert fit.trainer.fit_loop.epoch_loop.batch_progress.total.completed == 3
    last = RunDirectory(tiny_run_dir(tmp_path)).last_checkpoint
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    state = checkpoint["state_dict"]
    assert not [k for k in state if ".body." in k or "smpl" in k]  # no SMPL buffers, ever
    assert any(k.startswith("encoder.") for k in state) and "regressor.fc1.weight" in state
    test = run_cli_in_process("test", "--config", str(config), "--ckpt_path", str(last))
    metrics = test.trainer.callback_metrics
    for name in ("mpjpe", "pa_mpjpe", "accel", "mpvpe"):
        assert torch.isfinite(metrics[f"test/toy/{name}"])
    valid_frames = 47  # the toy val split's frames with valid == 1
    assert metrics["test/toy/frames"].item() == valid_frames


STR_READINGS = ("--model.init_args.encoder.init_args.supervise_frames", "all",
                "--model.init_args.encoder.init_args.ttr_bidirectional", "true",
                "--model.init_args.encoder.init_args.ste_time_excitation", "per_frame")


def test_str_readings_fit_and_test_from_the_command_line(tiny_shards, tmp_path):
    config = str(write_config(tiny_config(tiny_shards, tmp_path, max_steps=2), tmp_path / "c.yaml"))
    fit = run_cli_in_process("fit", "--config", config, *STR_READINGS)
    encoder = fit.model.encoder
    assert encoder.supervise_frames == "all" and len(encoder.ttr.grus) == 3
    assert encoder.ttr.grus[0].gru.bidirectional and encoder.ste_time.excitation_mode == "per_frame"
    last = tiny_run_dir(tmp_path) / "checkpoints" / "last.ckpt"
    test = run_cli_in_process("test", "--config", config, *STR_READINGS, "--ckpt_path", str(last))
    assert torch.isfinite(test.trainer.callback_metrics["test/toy/pa_mpjpe"])


def test_all_frame_supervision_pairs_every_prediction_with_its_frames_target():
    """Z is supervised at each of the T frames, F_SF and F_CF at the middle frame."""
    torch.manual_seed(0)
    module = PoseShapeModule(
        lambda dim, length: STREncoder(dim, length, hidden_size=8, num_layers=1,
                                       integration_hidden_size=8, supervise_frames="all"),
        feature_dim=16, seq_len=8, regressor_hidden_size=16)
    gen = torch.Generator().manual_seed(1)
    batch = {"features": torch.randn(3, 8, 16, generator=gen),
             "kp2d": torch.rand(3, 8, 49, 3, generator=gen),
             "kp3d": torch.randn(3, 8, 49, 3, generator=gen),
             "pose": torch.randn(3, 8, 72, generator=gen) * 0.3,
             "shape": torch.randn(3, 8, 10, generator=gen),
             **{k: (torch.rand(3, 8, generator=gen) > 0.3).float()
                for k in ("w_kp2d", "w_kp3d", "w_smpl")}}
    terms, prediction = module.compute_losses(batch)
    assert prediction.joints.shape[0] == 3 * 8 + 2 * 3
    target = {k: torch.cat((v.flatten(0, 1), v[:, 4], v[:, 4]))
              for k, v in batch.items() if k != "features"}
    expected = module.criterion({"kp2d": prediction.joints2d, "kp3d": prediction.joints,
                                 "rotmat": prediction.rotmat, "betas": prediction.betas}, target)
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, rtol=0, atol=0)


def test_seed_names_the_run_directory_seeds_the_data_and_is_in_the_checkpoint(tiny_shards,
                                                                               tmp_path):
    config = write_config(tiny_config(tiny_shards, tmp_path), tmp_path / "c.yaml")
    fit = run_cli_in_process("fit", "--config", str(config), "--seed_everything", "5")
    assert fit.trainer.datamodule.stream_config.seed == 5
    last = tiny_run_dir(tmp_path, seed=5) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["ShardDataModule"]["seed"] == 5
    assert not tiny_run_dir(tmp_path, seed=0).exists()
    # the default seed: 0, never random
    default = run_cli_in_process("fit", "--config", str(config))
    assert default.config.fit.seed_everything == 0 and default.trainer.datamodule.stream_config.seed == 0
    assert (tiny_run_dir(tmp_path, seed=0) / "checkpoints" / "last.ckpt").is_file()


def test_a_random_or_no_seed_is_refused(tiny_shards, tmp_path):
    config = write_config(tiny_config(tiny_shards, tmp_path), tmp_path / "c.yaml")
    for value in ("true", "false"):
        with pytest.raises(ConfigError) as error:
            run_cli_in_process("fit", "--config", str(config), "--seed_everything", value)
        assert "seed_everything must be an integer seed (it names the run directory seed<N> and " \
               f"seeds the data stream and the initial weights), got {value.title()}" in str(error.value)


def test_test_with_best_checkpoint_reproduces_its_validation_metrics(tiny_shards, tmp_path):
    config = write_config(tiny_config(tiny_shards, tmp_path, max_steps=6, steps_per_epoch=2),
                          tmp_path / "c.yaml")
    run_cli_in_process("fit", "--config", str(config))
    best = Path(RunDirectory(tiny_run_dir(tmp_path)).resolve_ckpt_path("best"))
    meta = torch.load(best, map_location="cpu", weights_only=True)
    score = next(v["best_model_score"] for k, v in meta["callbacks"].items()
                 if k.startswith("ModelCheckpoint"))
    test = run_cli_in_process("test", "--config", str(config), "--ckpt_path", "best")
    assert test.trainer.callback_metrics["test/toy/pa_mpjpe"].item() == pytest.approx(
        score.item(), abs=1e-4)


def test_resume_continues_step_optimizer_and_scheduler(tiny_shards, tmp_path):
    first = tiny_config(tiny_shards, tmp_path, max_steps=4, steps_per_epoch=2)
    run_cli_in_process("fit", "--config", str(write_config(first, tmp_path / "a.yaml")))
    run_dir = tiny_run_dir(tmp_path)
    resumed_from = RunDirectory(run_dir).newest_checkpoint()
    before = torch.load(resumed_from, map_location="cpu", weights_only=True)
    assert before["global_step"] == 4
    inode, content = resumed_from.stat().st_ino, resumed_from.read_bytes()

    second = tiny_config(tiny_shards, tmp_path, max_steps=8, steps_per_epoch=2)
    resumed = run_cli_in_process("fit", "--config", str(write_config(second, tmp_path / "b.yaml")),
                      "--ckpt_path", "auto")
    assert resumed.trainer.global_step == 8
    # Lightning re-saves step 4 under the same name after resuming: the file is left alone.
    assert resumed.trainer.ckpt_path == str(resumed_from)
    assert resumed_from.stat().st_ino == inode and resumed_from.read_bytes() == content
    after = torch.load(RunDirectory(run_dir).newest_checkpoint(), map_location="cpu", weights_only=True)
    assert after["global_step"] == 8
    adam_steps = {int(s["step"]) for s in after["optimizer_states"][0]["state"].values()}
    assert adam_steps == {8}  # Adam's moments carried over, not restarted at 4
    # The plateau scheduler's state carries over. Lightning writes a checkpoint at validation
    # end and steps the scheduler after it, then resumes at the next epoch: of the 2 + 2 epochs,
    # the scheduler steps of epochs 1 and 3 are in the checkpoints (docs/training.md).
    assert before["lr_schedulers"][0]["last_epoch"] == 1
    assert after["lr_schedulers"][0]["last_epoch"] == 2


def test_a_run_resumed_mid_epoch_trains_on_the_batches_of_the_uninterrupted_run(tiny_shards,
                                                                                   tmp_path, caplog):
    """The training loader is resumable: resumed from a checkpoint taken in the middle of an
    epoch, the run trains on exactly the batches the uninterrupted run trains on (and Lightning
    has no reason to warn that the loader is not resumable)."""
    recorder = {"class_path": "training_helpers.BatchFingerprints"}

    def fit(root: Path, max_steps: int, *args: str) -> STRLightningCLI:
        config = tiny_config(tiny_shards, root, max_steps=max_steps, steps_per_epoch=4,
                             every_n_steps=3)
        config["trainer"]["callbacks"].append(recorder)
        root.mkdir(exist_ok=True)
        path = write_config(config, root / f"{max_steps}.yaml")
        return run_cli_in_process("fit", "--config", str(path), *args)

    uninterrupted = batch_fingerprints(fit(tmp_path / "whole", 10))
    assert sorted(uninterrupted) == list(range(10))
    first = batch_fingerprints(fit(tmp_path / "parts", 6))  # stops at batch 2 of epoch 1
    caplog.clear()
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = batch_fingerprints(fit(tmp_path / "parts", 10, "--ckpt_path", "auto"))
    assert sorted(resumed) == [6, 7, 8, 9]
    assert {**first, **resumed} == uninterrupted
    assert "Restored all states" in caplog.text  # Lightning's log is seen here
    messages = [str(w.message) for w in caught] + caplog.messages
    assert not [m for m in messages if "not resumable" in m or "weights_only" in m], messages


def test_auto_starts_fresh_without_checkpoints(tmp_path):
    run = RunDirectory(tmp_path)
    assert run.resolve_ckpt_path("auto") is None
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run.resolve_ckpt_path("best")
    assert run.resolve_ckpt_path("some/file.ckpt") == "some/file.ckpt"


def test_sigkill_mid_training_resumes_from_last_checkpoint(tiny_shards, tmp_path):
    config = tiny_config(tiny_shards, tmp_path, max_steps=100_000, steps_per_epoch=50,
                         every_n_steps=1)
    path = write_config(config, tmp_path / "long.yaml")
    process = subprocess.Popen([*STR_LIGHTNING_COMMAND, "fit", "--config", str(path)], cwd=REPO,
                               env=command_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoints = RunDirectory(tiny_run_dir(tmp_path)).checkpoint_dir
    deadline = time.monotonic() + 120
    while len(list(checkpoints.glob("step*.ckpt"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert len(list(checkpoints.glob("step*.ckpt"))) >= 5, "training never checkpointed"

    # Every file that exists is a complete checkpoint: a kill never leaves a half-written one.
    for ckpt in checkpoints.glob("*.ckpt"):
        torch.load(ckpt, map_location="cpu", weights_only=True)
    run = RunDirectory(tiny_run_dir(tmp_path))
    others = {p for p in checkpoints.iterdir() if not p.name.endswith(".ckpt")}
    assert others <= set(run.leftover_temporaries())  # a killed write's file: never resumed from
    killed_at = torch.load(run.newest_checkpoint(), map_location="cpu",
                           weights_only=True)["global_step"]

    config["trainer"]["max_steps"] = killed_at + 2
    resume = write_config(config, tmp_path / "resume.yaml")
    resumed = run_cli_in_process("fit", "--config", str(resume), "--ckpt_path", "auto")
    assert resumed.trainer.global_step == killed_at + 2
    assert not run.leftover_temporaries()  # removed when the next fit starts


@pytest.mark.slow
def test_ddp_two_processes_fit_and_test_like_one(tiny_shards, tmp_path):
    config = tiny_config(tiny_shards, tmp_path, max_steps=4, steps_per_epoch=2, logger=True)
    path = write_config(config, tmp_path / "ddp.yaml")
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
    fit = run_command("fit", "--config", str(path), *ddp)
    assert fit.returncode == 0, fit.stderr[-3000:]
    last = RunDirectory(tiny_run_dir(tmp_path)).last_checkpoint
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4

    results = {}
    for name, extra in (("ddp", ddp), ("single", [])):
        out = run_command("test", "--config", str(path), "--ckpt_path", str(last), *extra)
        assert out.returncode == 0, out.stderr[-3000:]
        results[name] = read_test_metrics(tiny_run_dir(tmp_path) / "csv")
    assert results["ddp"].keys() == results["single"].keys()
    for key, value in results["single"].items():
        assert results["ddp"][key] == pytest.approx(value, abs=1e-4), key
    assert results["single"]["test/toy/frames"] == 47


def read_test_metrics(csv_root: Path) -> dict[str, float]:
    """Test metrics of the newest CSVLogger version under ``csv_root``."""
    import csv

    newest = max(csv_root.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    with open(newest / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    return {k: float(v) for row in rows for k, v in row.items() if k.startswith("test/") and v}


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluating_untrained_weights_is_refused_unless_asked(subcommand, tiny_shards, tmp_path):
    config = tiny_config(tiny_shards, tmp_path)
    config["data"]["predict_datasets"] = {"toy": str(tiny_shards / "val")}
    path = str(write_config(config, tmp_path / "c.yaml"))
    with pytest.raises(RunRefused, match=f"{subcommand} without trained weights: .* Pass "
                                         "--ckpt_path best"):
        run_cli_in_process(subcommand, "--config", path)
    assert not tiny_run_dir(tmp_path).exists()  # refused before anything was written
    assert run_lightning([subcommand, "--config", path, "--ckpt_path", "none"]) == 0


def test_the_test_record_names_checkpoint_step_weights_and_configuration(tiny_shards, tmp_path):
    config = write_config(tiny_config(tiny_shards, tmp_path, max_steps=6, steps_per_epoch=2),
                          tmp_path / "c.yaml")
    run_cli_in_process("fit", "--config", str(config))
    run_cli_in_process("test", "--config", str(config), "--ckpt_path", "best",
                       "--seed_everything", "0")
    run = RunDirectory(tiny_run_dir(tmp_path))
    best = Path(run.resolve_ckpt_path("best"))
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    with run.results_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["dataset"] for row in rows] == ["toy"]
    assert rows[0]["checkpoint"] == str(best.absolute())
    assert int(rows[0]["global_step"]) == checkpoint["global_step"]
    assert rows[0]["weights_sha256"] == weights_digest(checkpoint["state_dict"])
    assert rows[0]["seed"] == "0"
    tested = yaml.safe_load(run.results_config.read_text())
    assert tested["ckpt_path"] == str(best) and tested["seed_everything"] == 0
    assert tested["model"]["init_args"]["encoder"]["class_path"] == "str_lightning.nets.STREncoder"


def test_a_step_schedule_takes_the_run_length(tiny_shards, tmp_path):
    config = tiny_config(tiny_shards, tmp_path, max_steps=6, steps_per_epoch=2)
    config["model"]["init_args"].update(
        scheduler={"class_path": "torch.optim.lr_scheduler.OneCycleLR",
                   "init_args": {"max_lr": 1e-3, "pct_start": 0.3, "cycle_momentum": False}},
        scheduler_interval="step")
    fit = run_cli_in_process("fit", "--config", str(write_config(config, tmp_path / "c.yaml")))
    scheduler = fit.trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 6 and scheduler.last_epoch == 6  # stepped after every step


def test_a_schedule_too_short_for_its_warm_up_is_refused_with_the_flag_to_change(tiny_shards,
                                                                                  tmp_path):
    config = tiny_config(tiny_shards, tmp_path, max_steps=10, steps_per_epoch=5)
    config["model"]["init_args"].update(
        scheduler={"class_path": "torch.optim.lr_scheduler.OneCycleLR",
                   "init_args": {"max_lr": 1e-3, "pct_start": 0.1}},
        scheduler_interval="step")
    with pytest.raises(RunRefused, match=r"over 10 optimizer steps.*--trainer.max_steps"):
        run_cli_in_process("fit", "--config", str(write_config(config, tmp_path / "c.yaml")))


def test_a_cli_run_by_our_own_commands_sets_their_command_line_aside(tiny_shards, tmp_path,
                                                                       monkeypatch):
    """``quickstart`` runs fit and test in-process: no Lightning warning about two command lines."""
    monkeypatch.setattr(sys, "argv", ["str-lightning", "quickstart"])
    config = write_config(tiny_config(tiny_shards, tmp_path, max_steps=1, steps_per_epoch=1),
                          tmp_path / "c.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli_on(["fit", "--config", str(config)])
    assert [str(w.message) for w in caught if "args parameter" in str(w.message)] == []
    assert sys.argv == ["str-lightning", "quickstart"]


def test_weight_averaging_is_trained_and_its_averaged_weights_tested(tiny_shards, tmp_path,
                                                                       recwarn):
    config = tiny_config(tiny_shards, tmp_path, max_steps=6, steps_per_epoch=2)
    config["trainer"]["callbacks"].append({"class_path": "lightning.pytorch.callbacks.EMAWeightAveraging",
                                           "init_args": {"decay": 0.5}})
    path = str(write_config(config, tmp_path / "c.yaml"))
    run_cli_in_process("fit", "--config", path)
    run_cli_in_process("test", "--config", path, "--ckpt_path", "best")
    run = RunDirectory(tiny_run_dir(tmp_path))
    checkpoint = torch.load(run.resolve_ckpt_path("best"), map_location="cpu", weights_only=True)
    averaged, current = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert weights_digest(averaged) != weights_digest(current)
    with run.results_csv.open() as handle:
        assert next(csv.DictReader(handle))["weights_sha256"] == weights_digest(averaged)
    assert not [str(w.message) for w in recwarn if "WeightAveraging" in str(w.message)]
