"""Every anticipated mistake, run through the real command in a subprocess: exit status 2, no
traceback, and the phrase that says what is wrong and what to do.

The mistakes a new user makes on the synthetic benchmark (no data yet, no checkpoint yet, an
empty or damaged split, own-video shards with a synthetic model, typos and wrong types in
keys) and the refusals docs/training.md lists (required values, random seeds, a second fit into
a run, another model's checkpoint, bad YAML, the mannequin on real data). The commands run two at
a time; each case then reads its own result.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_runners import run_command
from data_helpers import write_split

from str_lightning.app.cli import main
from str_lightning.app.config_errors import ConfigError
from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.runs.directory import RunDirectory

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = str(REPO / "configs/experiment/synthetic_str.yaml")
RUN_DIR = Path("synthetic/str/seed0")  # the recipe's run below --run.root
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Case:
    """A command line (``{root}`` is the world's directory), the directory it runs in, and the
    phrases its message must have and must not have."""

    args: tuple[str, ...]
    phrases: tuple[str, ...]
    cwd: str = "{root}"
    absent: tuple[str, ...] = field(default=())


FIT = ("fit", "--config", SYNTHETIC, "--run.root", "{root}/fresh")
TEST = ("test", "--config", SYNTHETIC, "--run.root", "{root}", "--ckpt_path", "best")
CASES = {
    "data not generated yet": Case(
        FIT, ("data.train_datasets[0]: data/synthetic/train", "data.val_datasets.synthetic",
              "str-lightning synth --out data/synthetic"),
        cwd="{root}/empty", absent=("data.test_datasets.", "data.predict_datasets.")),
    "best checkpoint of a run without one": Case(
        ("test", "--config", SYNTHETIC, "--run.root", "{root}/fresh", "--ckpt_path", "best"),
        ("--ckpt_path best: no checkpoint in", "train first (str-lightning fit)")),
    "empty split directory": Case(
        (*TEST, "--data.test_datasets", "{{empty: {root}/empty}}"),
        ("{root}/empty/manifest.json: no manifest", "str-lightning data index")),
    "shard torn in the middle": Case(
        (*TEST, "--data.root", "{root}/torn"),
        ("torn/test/test-000000.tar: sha256 expected", "str-lightning data check")),
    "torn shard met while testing without checksums": Case(
        (*TEST, "--data.root", "{root}/torn", "--data.verify_checksums", "[]"),
        ("str-lightning: error: shard {root}/torn/test/test-000000.tar",
         "str-lightning data check {root}/torn/test")),
    "shard with flipped bytes": Case(
        (*TEST, "--data.root", "{root}/flipped"),
        ("flipped/test/test-000000.tar: sha256 expected",)),
    "own-video features with a synthetic model": Case(
        ("predict", "--config", SYNTHETIC, "--run.root", "{root}", "--ckpt_path", "best",
         "--data.predict_datasets", "{{mine: {root}/mine}}"),
        ("its model reads 64-D features, but data.predict_datasets.mine", "2048-D features",
         "released TCMR/VIBE file")),
    "unknown nested key": Case(
        (*FIT, "--model.init_args.encoder.init_args.hiden_size", "8"),
        ("unknown key model.init_args.encoder.init_args.hiden_size", "did you mean hidden_size?")),
    "unknown top-level key": Case(
        (*FIT, "--trainr.max_epochs", "1"),
        ("unknown key trainr.max_epochs; did you mean trainer.max_epochs?",),
        absent=("usage:",)),
    "two type errors": Case(
        (*FIT, "--trainer.max_epochs", "abc", "--data.batch_size", "xyz"),
        ("trainer.max_epochs: expected an integer or null, got abc",
         "data.batch_size: expected an integer, got xyz")),
    "required values not given": Case(
        ("fit", "--config", str(REPO / "configs/experiment/paper_str_3dpw.yaml")),
        ("model.init_args.body_model: the directory of your SMPL files",
         "model.init_args.spin_checkpoint")),
    "random seed": Case(
        (*FIT, "--seed_everything", "true"), ("seed_everything must be an integer seed",)),
    "second fit into a run": Case(
        ("fit", "--config", SYNTHETIC, "--run.root", "{root}"),
        ("already holds checkpoints", "--ckpt_path auto", "--run.start_over true",
         "seed0.old-<timestamp>")),
    "checkpoint of another model": Case(
        ("test", "--config", str(REPO / "configs/experiment/synthetic_tcmr.yaml"),
         "--ckpt_path", f"{{root}}/{RUN_DIR}/checkpoints/last.ckpt"),
        ("holds another model than the config builds", f"{RUN_DIR}/cli_config.yaml")),
    "config file that is not YAML": Case(
        (*FIT, "--config", "{root}/broken.yaml"), ("broken.yaml is not valid YAML", "line 2")),
    "mannequin on real data": Case(
        (*TEST, "--data.test_datasets", "{{toy: {root}/real}}"),
        ("the test data is not the synthetic benchmark", "allow_mannequin_on_real_data")),
    "body model that does not exist": Case(
        (*FIT, "--model.init_args.body_model", "{root}/no_smpl"), ("no_smpl",)),
    "data check of a directory without shards": Case(
        ("data", "check", "{root}/empty"), ("{root}/empty/manifest.json: no manifest",)),
}


def cut_middle(path: Path, fraction: float = 0.1) -> None:
    """Remove ``fraction`` of a file's bytes from its middle (a torn copy)."""
    data = path.read_bytes()
    start, length = len(data) // 2, int(len(data) * fraction)
    path.write_bytes(data[:start] + data[start + length:])


def flip_a_byte(path: Path) -> None:
    """Change one byte of a member's data in the middle of the file: the tar stays readable."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def damaged_copy(data: Path, target: Path, damage) -> None:
    """The benchmark's directory with a damaged copy of the test split (the rest linked)."""
    target.mkdir()
    for entry in data.iterdir():
        if entry.name != "test":
            (target / entry.name).symlink_to(entry)
    (target / "test").mkdir()
    for entry in (data / "test").iterdir():
        (target / "test" / entry.name).write_bytes(entry.read_bytes())
    damage(target / "test" / "test-000000.tar")


@pytest.fixture(scope="module")
def world(small_synthetic_benchmark, tmp_path_factory) -> Path:
    """The small synthetic benchmark (linked where the recipe looks for it), a recipe run fitted
    for 2 steps, and the broken inputs."""
    root = tmp_path_factory.mktemp("mistakes")
    data = root / "data" / "synthetic"
    data.parent.mkdir()
    data.symlink_to(small_synthetic_benchmark)
    assert main(["fit", "--config", SYNTHETIC, "--run.root", str(root), "--data.root", str(data),
                 "--trainer.max_epochs", "1", "--data.steps_per_epoch", "2",
                 "--trainer.enable_progress_bar", "false"]) == 0
    assert RunDirectory(root / RUN_DIR).checkpoints()
    (root / "empty").mkdir()
    damaged_copy(data, root / "torn", cut_middle)
    damaged_copy(data, root / "flipped", flip_a_byte)
    write_split(root / "mine", [30], split="predict", feature_dim=2048)
    write_split(root / "real", [40, 35], split="test", feature_dim=64)
    (root / "broken.yaml").write_text("trainer:\n  max_epochs: [1\n")
    return root


@pytest.fixture(scope="module")
def results(world) -> dict[str, subprocess.CompletedProcess]:
    """Every case's command, run in its own process (two at a time)."""

    def run_case(case: Case) -> subprocess.CompletedProcess:
        args = [arg.format(root=world) for arg in case.args]
        return run_command(*args, cwd=case.cwd.format(root=world),
                           env={**ONE_THREAD, "STR_LIGHTNING_VERBOSE": None})

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CASES, pool.map(run_case, CASES.values())))


@pytest.mark.parametrize("name", CASES)
def test_mistake_ends_in_one_clear_message(name, results, world):
    case, result = CASES[name], results[name]
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    message = result.stderr[result.stderr.index("str-lightning: error: "):]
    for phrase in case.phrases:
        assert phrase.format(root=world) in message, message
    for phrase in case.absent:
        assert phrase not in output, output[-3000:]
    assert len(message.splitlines()) <= 8, message


def test_verbose_shows_the_traceback_of_an_anticipated_error(world):
    for flag, env in ((["--verbose", "true"], {}), ([], {"STR_LIGHTNING_VERBOSE": "1"})):
        args = [a.format(root=world) for a in CASES["best checkpoint of a run without one"].args]
        result = run_command(*args, *flag, cwd=world, env={**ONE_THREAD, **env})
        assert result.returncode == 2
        assert "Traceback" in result.stderr and "FileNotFoundError" in result.stderr
        assert "str-lightning: error: --ckpt_path best: no checkpoint in" in result.stderr


@pytest.mark.parametrize(("content", "expected"), [
    ("trainer:\n  max_epoch: 3\n", "unknown key trainer.max_epoch; did you mean trainer.max_epochs?"),
    ("model:\n  init_args:\n    encoder:\n      init_args:\n        hiden_size: 3\n",
     ("unknown key model.init_args.encoder.init_args.hiden_size (str_lightning.nets.STREncoder has "
     "no argument 'hiden_size'); did you mean hidden_size?")),
    ("model:\n  init_args:\n    regressor_hidden_size: abc\n",
     "model.init_args.regressor_hidden_size: expected an integer, got abc"),
    ("data:\n  train_datasets:\n    - {path: x, wieght: 1}\n",
     ("unknown key wieght in data.train_datasets (datamodules.loading.TrainDataset has no argument "
     "'wieght'); did you mean weight?")),
])
def test_a_config_file_mistake_names_the_key(tmp_path, content, expected):
    (tmp_path / "mistake.yaml").write_text(content)
    with pytest.raises(ConfigError) as error:
        STRLightningCLI(args=["fit", "--config", SYNTHETIC, "--config", str(tmp_path / "mistake.yaml")])
    assert expected in str(error.value)
