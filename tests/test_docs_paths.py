"""Every file the documentation says a command creates exists after running that command.

The documented commands run as written (in a fresh working directory, on the small synthetic
benchmark, at a tiny training budget): ``synth``, ``quickstart``, ``predict``, the README's
``export`` and docs/usage-own-video.md's ``predict`` with a run's saved config. Then each path
the docs give is looked up: the run directory's layout (docs/training.md's listing and
docs/architecture.md's table; those the commands cannot make must say when they are made), and
every ``runs/...`` path of the README and docs/ that names this run (``runs/synthetic/str/...``,
or usage-own-video's ``runs/PROJECT/EXPERIMENT/...``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from data_helpers import make_clip

from datamodules.schema import ShardWriter
from str_lightning.app.cli import main

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_DIR = Path("runs/synthetic/str/seed0")
TINY_BUDGET = """base: {repo}/configs/experiment/synthetic_str.yaml
trainer: {{max_epochs: 1, check_val_every_n_epoch: 1, enable_progress_bar: false}}
data: {{steps_per_epoch: 2}}
"""
LAYOUT_LINE = re.compile(r"^ {6}([\w./<>*-]+) {2,}(.+)$", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \|", re.MULTILINE)
RUN_PATH = re.compile(r"runs/(?:synthetic/str|PROJECT/EXPERIMENT)[^\s`'\")\]]*")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A working directory after the documented commands."""
    root = tmp_path_factory.mktemp("documented")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        Path("tiny.yaml").write_text(TINY_BUDGET.format(repo=REPO))
        assert main(["synth", "--out", "data/synthetic", "--preset", "small", "--quiet"]) == 0
        assert main(["quickstart", "--config", "tiny.yaml"]) == 0
        assert main(["predict", "--config", "tiny.yaml", "--ckpt_path", "best"]) == 0
        predictions = sorted(map(str, RUN_DIR.glob("predictions/synthetic/*.npz")))  # the README
        assert main(["export", *predictions, "--format", "bvh", "--out", "exports/"]) == 0
        features = make_clip("walk", 40, dataset="video", split="predict", kp3d="", smpl=False,
                             feature_dim=64)  # what `str-lightning features` writes for walk.mp4
        features["valid"] = np.ones(40, np.uint8)
        with ShardWriter("shards/mine", dataset="video", split="predict") as writer:
            writer.write(features)
        # docs/usage-own-video.md, step 3; the mannequin model needs its allowance off the
        # synthetic benchmark (a user's model has its SMPL directory)
        assert main(["predict", "--config", str(RUN_DIR / "cli_config.yaml"), "--ckpt_path", "best",
                     "--data.root", ".", "--data.predict_datasets", "{mine: shards/mine}",
                     "--model.init_args.allow_mannequin_on_real_data", "true"]) == 0
    return root


def layout_entries() -> list[tuple[str, str, str]]:
    """``(document, path, description)`` of the run directory's documented layout."""
    training = (REPO / "docs/training.md").read_text()
    architecture = (REPO / "docs/architecture.md").read_text()
    section = architecture.split("## The run directory", 1)[1].split("\n## ", 1)[0]
    entries = [("docs/training.md", *m.groups()) for m in LAYOUT_LINE.finditer(training)]
    entries += [("docs/architecture.md", *m.groups()) for m in TABLE_ROW.finditer(section)]
    assert len(entries) > 12, entries  # both listings were found
    return entries


def documented_run_paths() -> list[tuple[str, str]]:
    """``(document, path)`` of every path below this run that a document names."""
    return sorted({(doc.name, m.group(0).rstrip(".,;:")) for doc in DOCS
                   for m in RUN_PATH.finditer(doc.read_text())})


def as_glob(documented: str) -> str:
    """A documented path as a glob: placeholders and example step numbers match anything."""
    pattern = re.sub(r"<[^>]+>", "*", documented).replace("PROJECT/EXPERIMENT", "synthetic/str")
    return re.sub(r"\d{7}", "*", pattern).rstrip("/")


# Layout entries these commands do not create: a preemption, a W&B logger.
NOT_MADE_HERE = {"hpc_ckpt_<n>.ckpt", "wandb/", "wandb/offline-run-*"}


@pytest.mark.parametrize(("document", "path", "description"),
                         [e for e in layout_entries() if e[1] not in NOT_MADE_HERE],
                         ids=lambda value: value if "/" in value or "." in value else "")
def test_every_run_directory_entry_exists(workdir, document, path, description):
    assert list((workdir / RUN_DIR).glob(as_glob(path))), f"{document}: {path} ({description})"


def test_the_entries_the_commands_do_not_make_are_documented_as_conditional():
    for document, path, description in layout_entries():
        if path in NOT_MADE_HERE:
            assert "when " in description, f"{document}: {path} ({description})"


@pytest.mark.parametrize(("document", "path"), documented_run_paths())
def test_every_path_the_docs_give_for_this_run_exists(workdir, document, path):
    assert list(workdir.glob(as_glob(path))), f"{document} names {path}"


def test_the_readme_export_writes_a_bvh_per_predicted_sequence(workdir):
    predicted = {p.stem for p in (workdir / RUN_DIR / "predictions/synthetic").glob("*.npz")}
    assert predicted and {p.stem for p in (workdir / "exports").glob("*.bvh")} == predicted
