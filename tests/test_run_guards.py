"""What the training CLI refuses, and the explicit flags that allow it, on real runs."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from training_helpers import tiny_config, tiny_run_dir, write_config

from str_lightning.app.cli import main
from str_lightning.app.config_errors import ConfigError
from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.runs.directory import RunDirectory
from str_lightning.runs.guards import RunRefused


@pytest.fixture(scope="module")
def str_run(tiny_shards, tmp_path_factory) -> tuple[Path, RunDirectory]:
    """A finished STR fit (2 steps): its config and its run directory."""
    root = tmp_path_factory.mktemp("runs")
    config = write_config(tiny_config(tiny_shards, root, "str", max_steps=2, steps_per_epoch=2),
                          root / "str.yaml")
    STRLightningCLI(args=["fit", "--config", str(config)])
    return config, RunDirectory(tiny_run_dir(root))


def test_testing_another_models_checkpoint_is_refused(tiny_shards, str_run, tmp_path):
    _, run = str_run
    tcmr = write_config(tiny_config(tiny_shards, tmp_path, "tcmr", experiment="tcmr"),
                        tmp_path / "t.yaml")
    with pytest.raises(RunRefused, match=r"encoder\.class_path: checkpoint "
                       r"'str_lightning\.nets\.STREncoder', config 'str_lightning\.nets\.TCMREncoder'"):
        STRLightningCLI(args=["test", "--config", str(tcmr), "--ckpt_path", str(run.last_checkpoint)])

    wider = tiny_config(tiny_shards, tmp_path, "str", experiment="wider")
    wider["model"]["init_args"]["encoder"]["init_args"]["hidden_size"] = 16
    with pytest.raises(RunRefused, match=r"encoder\.init_args\.hidden_size: checkpoint 8, config 16"
                       r".*--run\.allow_model_mismatch true"):
        STRLightningCLI(args=["validate", "--config", str(write_config(wider, tmp_path / "w.yaml")),
                              "--ckpt_path", str(run.last_checkpoint)])


def test_allowed_mismatch_runs_the_checkpoints_model(tiny_shards, str_run, tmp_path):
    _, run = str_run
    tcmr = write_config(tiny_config(tiny_shards, tmp_path, "tcmr", experiment="tcmr"),
                        tmp_path / "t.yaml")
    with pytest.warns(UserWarning, match="running the checkpoint's model"):
        test = STRLightningCLI(args=["test", "--config", str(tcmr), "--ckpt_path",
                                     str(run.last_checkpoint), "--run.allow_model_mismatch", "true"])
    assert type(test.model.encoder).__name__ == "STREncoder"
    assert torch.isfinite(test.trainer.callback_metrics["test/toy/mpjpe"])


def test_matching_checkpoint_keeps_the_configs_other_settings(str_run):
    config, _ = str_run
    test = STRLightningCLI(args=["test", "--config", str(config), "--ckpt_path", "best",
                                 "--model.init_args.edge_mode", "tcmr"])
    assert test.model.hparams.edge_mode == "tcmr"  # not replaced by the checkpoint's


def test_second_fit_into_a_run_is_refused_unless_continued_or_started_over(str_run, tmp_path):
    config, run = str_run
    before = run.checkpoints()
    with pytest.raises(RunRefused, match=r"already holds checkpoints.*--ckpt_path auto.*"
                       r"--run\.start_over true"):
        STRLightningCLI(args=["fit", "--config", str(config)])
    assert run.checkpoints() == before

    copy = RunDirectory(tiny_run_dir(tmp_path))
    shutil.copytree(run.path, copy.path, symlinks=True)
    restarted = STRLightningCLI(args=["fit", "--config", str(config), "--run.root", str(tmp_path),
                                      "--run.start_over", "true"])
    assert restarted.trainer.ckpt_path is None and restarted.trainer.global_step == 2
    archived = [p for p in copy.path.parent.iterdir() if p.name.startswith(f"{copy.path.name}.old-")]
    assert len(archived) == 1
    assert sorted(p.name for p in RunDirectory(archived[0]).checkpoints()) == [p.name for p in before]


def test_refusal_is_a_clear_command_line_error(str_run, capsys):
    config, _ = str_run
    assert main(["fit", "--config", str(config)]) == 2
    assert "str-lightning: error: run directory" in capsys.readouterr().err


class NotAllowed:
    """Any class outside torch's weights-only allow-list."""


def test_auto_skips_checkpoints_weights_only_refuses(str_run, tmp_path):
    _, original = str_run
    run = RunDirectory(tmp_path / "run")
    shutil.copytree(original.path, run.path, symlinks=True)
    code = run.checkpoint_dir / "step9999998.ckpt"
    torch.save({"global_step": 9999998, "payload": NotAllowed()}, code)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(code, weights_only=True)
    torn = run.checkpoint_dir / "step9999999.ckpt"
    torn.write_bytes(code.read_bytes()[:100])
    with pytest.warns(UserWarning, match="skipping") as warned:
        newest = run.newest_checkpoint()
    messages = " ".join(str(w.message) for w in warned)
    assert f"--ckpt_path auto: skipping {code}" in messages and f"skipping {torn}" in messages
    assert newest.name == original.newest_checkpoint().name
    with pytest.warns(UserWarning, match=f"--ckpt_path best: skipping {code}"):
        assert Path(run.resolve_ckpt_path("best")).name.startswith("best-step")

def test_yaml_syntax_error_names_the_file(tmp_path):
    fragment = tmp_path / "trainer.yaml"
    fragment.write_text("max_epochs: [1\nlimit: 2\n")
    config = tmp_path / "experiment.yaml"
    config.write_text("trainer: trainer.yaml\n")
    for path in (fragment, config):
        with pytest.raises(ConfigError) as error:
            STRLightningCLI(args=["fit", "--config", str(path)])
        assert f"config file {fragment} is not valid YAML" in str(error.value)
        assert "line 2" in str(error.value) and "<unicode string>" not in str(error.value)
