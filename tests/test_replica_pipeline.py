"""Every paper recipe from the licensed files to the published numbers, on replicas of them.

Each recipe of configs/ runs the way docs/training.md and docs/data.md say, with
`tests/replicas.py`'s files in place of the licensed ones: every split directory it reads is made
from its released file by the command of docs/data.md's file map (`str-lightning data convert`),
checked (`data check`), then the recipe trains for 2 steps (`fit`, with the real SMPL file layout
and a SPIN checkpoint, the model shrunk on the command line), is tested (`test --ckpt_path best`)
and the released checkpoint of its table is put through `str-lightning reproduce released`.
The replicas' videos include one of 10 frames: every training split loses it, the conversion
and `data check` count it, training runs. One recipe runs in the default test run; every recipe
runs in the slow pass.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import pytest
import torch
from helpers import recipes, write_random_body_dir
from replicas import LENGTHS, write_db_replica, write_released_checkpoint, write_spin_checkpoint

from datamodules.converters import REPORT_NAME, files_for_directory
from datamodules.schema import iterate_clips
from str_lightning.app.cli import main
from str_lightning.evaluation.published import RELEASES
from str_lightning.nets import TCMREncoder, VIBEEncoder
from str_lightning.nets.regressor import Regressor
from str_lightning.runs.config_files import compose_file

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
DOCUMENTED_CONFIG = "configs/experiment/paper_str_table6_mpii3d.yaml"
SPIN_PATH, BODY_PATH, SHARDS_PATH = ("data/base_data/spin_model_checkpoint.pth.tar", "data/body",
                                     "data/shards")
REGRESSOR_HIDDEN = 16
TINY = {  # the model shrunk on the command line: seconds per step on a CPU
    "STREncoder": {"hidden_size": 8, "num_layers": 1, "integration_hidden_size": 8},
    "TCMREncoder": {"hidden_size": 8, "num_layers": 1, "attention_hidden_size": 8},
    "VIBEEncoder": {"hidden_size": 8, "num_layers": 1},
}
SHORT_CLIPS = re.compile(r"(\d+) of (\d+) clips \((\d+) of (\d+) frames\) shorter than seq_len=16")
# the released checkpoint whose published figures belong with each recipe's test sets
RELEASE_OF = {
    **{f"experiment/paper_{m}_{t}.yaml": f"tcmr_{t}_test.pth.tar".replace(
        "table4_h36m_mpii3d", "table4_mpii3dd_h36m")
       for m in ("str", "tcmr") for t in ("table4_3dpw", "table4_h36m_mpii3d", "table6_3dpw",
                                          "table6_h36m", "table6_mpii3d")},
    **{f"experiment/paper_{m}_{t}.yaml": f"tcmr_table{4 if t == '3dpw' else 6}_3dpw_test.pth.tar"
       for m in ("str", "tcmr") for t in ("3dpw", "no3dpw")},
    "experiment/paper_str_no3dpw_literal_aux.yaml": "tcmr_table6_3dpw_test.pth.tar",
    "experiment/paper_vibe_no3dpw.yaml": "vibe_model_wo_3dpw.pth.tar",
    **{" + ".join(str(p.relative_to(CONFIGS)) for p in recipe): "tcmr_table6_mpii3d_test.pth.tar"
       for recipe in recipes(CONFIGS) if recipe[0] == CONFIGS / "ablations/paper.yaml"},
}
FAST = "experiment/paper_str_table6_mpii3d.yaml"


@pytest.fixture(scope="module")
def licensed(tmp_path_factory) -> dict[str, Path]:
    """The user's downloads: an SMPL directory, SPIN's checkpoint, a folder of db files (written
    on demand), and where the shards and runs go."""
    root = tmp_path_factory.mktemp("licensed")
    return {"body": write_random_body_dir(root / "body"),
            "spin": write_spin_checkpoint(root / "base_data/spin_model_checkpoint.pth.tar",
                                          REGRESSOR_HIDDEN),
            "downloads": root / "downloads", "shards": root / "shards", "runs": root / "runs"}


def split_directories(config: dict) -> list[str]:
    """Every split directory a composed recipe reads, below its data root."""
    data = config["data"]
    paths = [d["path"] for d in data["train_datasets"]]
    paths += [*data.get("val_datasets", {}).values(), *data.get("test_datasets", {}).values()]
    return sorted(set(paths + ([data["motion_dataset"]] if data.get("motion_dataset") else [])))


def convert_and_check(directory: str, licensed: dict[str, Path], capsys) -> str:
    """Make ``directory`` with docs/data.md's command for its released file (once per module)
    and check it; returns what `data check` printed."""
    entry = files_for_directory(directory)[0]
    out = licensed["shards"] / directory
    if not (out / "manifest.json").is_file():
        write_db_replica(entry, licensed["downloads"])
        command = shlex.split(entry.command(str(licensed["downloads"]), str(licensed["shards"])))
        assert command[:1] == ["str-lightning"]
        assert main(command[1:]) == 0, entry.name
        report = json.loads((out / REPORT_NAME).read_text())
        assert (report["released_file"], report["shard_directory"]) == (entry.name, directory)
        assert (report["short_clips"], report["short_clip_frames"]) == (1, 10)
    capsys.readouterr()
    assert main(["data", "check", str(out)]) == 0
    return capsys.readouterr().out


def documented_commands(document: str, section: str) -> list[list[str]]:
    """The indented commands of a documentation section, continuation lines joined."""
    text = (REPO / "docs" / document).read_text().split(section, 1)[1].split("\n#", 1)[0]
    blocks = re.findall(r"(?:^    .*\n)+", text, re.MULTILINE)
    lines = " ".join(blocks[0].split("\n")).replace("\\ ", " ")
    return [shlex.split(command) for command in re.split(r"\s(?=str-lightning )", lines.strip())]


def with_replicas(command: list[str], licensed: dict[str, Path], **paths: str) -> list[str]:
    """A documented command on the replicas: the licensed files' paths replaced by theirs."""
    replaced = {SPIN_PATH: str(licensed["spin"]), BODY_PATH: str(licensed["body"]),
                SHARDS_PATH: str(licensed["shards"]), **paths}
    assert command[0] == "str-lightning"
    return [replaced.get(token, token) for token in command[1:]]


def model_arguments(config: dict) -> list[str]:
    """The model shrunk to seconds per step on a CPU."""
    init = config["model"]["init_args"]
    encoder = init["encoder"]["class_path"].rsplit(".", 1)[1]
    args = [f"--model.init_args.encoder.init_args.{k}={v}" for k, v in TINY[encoder].items()]
    args += ["--model.init_args.regressor_hidden_size", str(REGRESSOR_HIDDEN)]
    if "discriminator_hidden_size" in init:
        args += ["--model.init_args.discriminator_hidden_size", "8",
                 "--model.init_args.discriminator_attention_size", "8"]
    return args


def stacked(command: list[str], files: list[str]) -> list[str]:
    """``command`` with ``--config FILE`` of each further file right after the first one's."""
    after = command.index(files[0]) + 1
    return [*command[:after], *(a for f in files[1:] for a in ("--config", f)), *command[after:]]


def released_replica(release: str, licensed: dict[str, Path]) -> Path:
    """A released checkpoint of ``release``'s method at the tiny widths."""
    path = licensed["downloads"] / "pretrained" / release
    if not path.is_file():
        torch.manual_seed(11)
        if RELEASES[release].method == "tcmr":
            encoder = TCMREncoder(2048, 16, **TINY["TCMREncoder"])
        else:
            encoder = VIBEEncoder(2048, 16, **TINY["VIBEEncoder"])
        regressor = Regressor(2048, REGRESSOR_HIDDEN, body_model=str(licensed["body"]))
        write_released_checkpoint(path, encoder, regressor, performance=52.7)
    return path


def merged(base: dict, override: dict) -> dict:
    """``override`` over ``base`` key by key, as a later --config file goes over an earlier one."""
    return {**base, **{key: merged(base[key], value) if isinstance(value, dict)
                       and isinstance(base.get(key), dict) else value
                       for key, value in override.items()}}


def run_recipe(name: str, licensed: dict[str, Path], capsys) -> None:
    """``name``: the recipe's files below configs/, joined by " + " (an ablation row: the
    benchmark file, then the row)."""
    files = [str(CONFIGS / part) for part in name.split(" + ")]
    config = {}
    for path in files:
        config = merged(config, compose_file(path))
    for directory in split_directories(config):
        checked = convert_and_check(directory, licensed, capsys)
        counts = tuple(map(int, SHORT_CLIPS.search(checked).groups()))
        assert counts == (1, len(LENGTHS), 10, sum(LENGTHS)), (directory, checked)

    # docs/training.md, "Running a recipe": fit and test, with this recipe and the replicas
    fit, test = (with_replicas(c, licensed, **{DOCUMENTED_CONFIG: files[0]})
                 for c in documented_commands("training.md", "### Running a recipe"))
    fit, test = (stacked(c, files) for c in (fit, test))
    assert fit[:1] == ["fit"] and test[:1] == ["test"] and "best" in test
    on_replicas = ["--data.root", str(licensed["shards"]), "--run.root", str(licensed["runs"]),
                   "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
                   "--data.num_workers", "0", *model_arguments(config)]
    assert main([*fit, *on_replicas, "--trainer.max_steps", "2", "--data.steps_per_epoch", "2"]) == 0
    assert main([*test, *on_replicas]) == 0
    run = licensed["runs"] / config["run"]["project"] / config["run"]["experiment"] / "seed0"
    with (run / "results/test_results.csv").open() as handle:
        tested = {row["dataset"]: row for row in csv.DictReader(handle)}
    assert set(tested) == set(config["data"]["test_datasets"])
    for dataset, directory in config["data"]["test_datasets"].items():  # the 10-frame video too
        valid = sum(int(clip["valid"].sum()) for clip in iterate_clips(licensed["shards"] / directory))
        assert float(tested[dataset]["frames"]) == valid

    # docs/evaluation.md, "Released weights against published numbers", for the recipe's release
    release = RELEASES[RELEASE_OF[name]]
    (documented,) = documented_commands("evaluation.md",
                                        "### Released weights against published numbers")
    reproduce = with_replicas(documented, licensed, **{
        "tcmr": release.method,
        "data/pretrained/tcmr_table4_3dpw_test.pth.tar": str(released_replica(release.file,
                                                                              licensed))})
    capsys.readouterr()
    assert main([*reproduce, "--run-root", str(licensed["runs"]), "--accelerator", "cpu",
                 "--num-workers", "0"]) == 0
    table = capsys.readouterr().out
    record = licensed["runs"] / "released" / release.file.removesuffix(".pth.tar") / "seed0"
    with (record / "results/test_results.csv").open() as handle:
        measured = {row["dataset"]: row for row in csv.DictReader(handle)}
    for dataset, figures in release.published.items():  # ours (the record), published, difference
        for metric, value in figures.items():
            ours = float(measured[dataset][metric])
            assert (f"| {ours:.2f} | {value:g} | {ours - value:+.2f} | ±" in table
                    or f"| {ours:.2f} | {value:g} | {ours - value:+.2f} | – | not comparable |"
                    in table), (dataset, metric, table)


def test_a_paper_recipe_runs_from_the_replicas_to_the_published_numbers(licensed, capsys, caplog):
    """The fast end-to-end run: STR on TCMR's repr_table6_mpii3d_model protocol (the recipe of
    Table 2), whose training splits all hold a 10-frame clip that gives no window."""
    with caplog.at_level("WARNING"):
        run_recipe(FAST, licensed, capsys)
    lost = [m for m in caplog.messages if "shorter than seq_len=16" in m]
    for directory in ("insta/train", "posetrack/train", "mpii3d/train-scale12", "h36m/train"):
        assert any(m.startswith(f"{licensed['shards'] / directory}: 1 of 3 clips (10 of 74 "
                                "frames)") for m in lost), (directory, lost)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(RELEASE_OF) - {FAST}))
def test_every_paper_recipe_runs_from_the_replicas_to_the_published_numbers(name, licensed, capsys):
    run_recipe(name, licensed, capsys)


def test_every_paper_recipe_is_covered():
    paper = {" + ".join(str(p.relative_to(CONFIGS)) for p in recipe) for recipe in recipes(CONFIGS)
             if recipe[0].match("experiment/paper_*.yaml")
             or recipe[0] == CONFIGS / "ablations/paper.yaml"}
    assert paper == set(RELEASE_OF)
