"""Documented commands that need the licensed files or a cluster, checked as far as they can be
without them: every `sbatch` line of docs/slurm.md gives every value its recipe requires, and
every `str-lightning compare` line of the docs names run directories that recipes write.

(The commands that the replicas can run are run: docs/data.md's file map, docs/training.md's
"Running a recipe" and docs/evaluation.md's `reproduce released` in
tests/test_replica_pipeline.py.)
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
import yaml
from helpers import recipes

from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.runs.config_files import compose_file, required_keys

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TEMPLATES = ("slurm/train.sbatch", "slurm/test.sbatch", "slurm/ablations.sbatch")


def slurm_block() -> str:
    text = (REPO / "docs/slurm.md").read_text()
    return text.split("```bash\n", 1)[1].split("```", 1)[0]


def sbatch_lines() -> list[list[str]]:
    """docs/slurm.md's sbatch command lines, continuations joined, ``"${paper[@]}"`` expanded
    with the block's ``paper=(...)`` array."""
    block = slurm_block().replace("\\\n", " ")
    arrays = re.findall(r"^paper=\(([^)]*)\)", block, re.MULTILINE | re.DOTALL)
    paper = shlex.split(arrays[0]) if arrays else []
    lines = []
    for line in block.splitlines():
        words = shlex.split(line.replace("$(", "").replace(")", ""), comments=True)
        template = next((w for w in words if w in TEMPLATES), None)
        if template:
            rest = words[words.index(template) + 1:]
            expanded = [w for word in rest for w in (paper if word == "${paper[@]}" else [word])]
            lines.append([template, *expanded])
    return lines


def configs_of(template: str, args: list[str]) -> tuple[list[list[str]], list[str]]:
    """The --config arguments of each run one sbatch line makes, and the extra arguments it
    passes them."""
    if template == "slurm/ablations.sbatch":  # the benchmark file alone, then with each row
        given = bool(args) and not args[0].startswith("-")
        benchmark = REPO / (args[0] if given else "configs/ablations/paper.yaml")
        runs = [(benchmark,), *((benchmark, row) for row in
                                sorted(benchmark.parent.glob("rows/*.yaml")))]
        return ([[a for path in run for a in ("--config", str(path))] for run in runs],
                args[1:] if given else args)
    return [["--config", str(REPO / args[0])]], args[1:]


def printed_config(*args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        STRLightningCLI(args=["fit", *args, "--print_config"])
    assert exit_info.value.code == 0, args
    return yaml.safe_load(out.getvalue())


def test_the_slurm_block_has_the_paper_lines():
    lines = sbatch_lines()
    assert len(lines) >= 9
    assert any("configs/experiment/paper_str_table6_mpii3d.yaml" in line for line in lines)


@pytest.mark.parametrize("line", sbatch_lines(), ids=" ".join)
def test_every_documented_sbatch_line_gives_every_required_value(line):
    configs, extra = configs_of(line[0], line[1:])
    assert configs, line
    for config in configs:
        assert required_keys(printed_config(*config, *extra)) == [], (config, line)


def recipe_runs() -> set[tuple[str, str]]:
    """(project, experiment) of every recipe in configs/ (an ablation row's experiment over its
    benchmark file's run)."""
    runs = set()
    for recipe in recipes(REPO / "configs"):
        run = {key: value for path in recipe for key, value in compose_file(path)["run"].items()}
        runs.add((run.get("project"), run.get("experiment")))
    return runs


def compare_directories() -> list[tuple[str, str]]:
    """(document, path) of each `runs/...` argument of a `str-lightning compare` line."""
    found = []
    for doc in DOCS:
        text = doc.read_text().replace("\\\n", " ")
        for line in re.findall(r"str-lightning compare ([^\n`]*)", text):
            found += [(doc.name, word) for word in line.split() if word.startswith("runs/")]
    return found


@pytest.mark.parametrize(("document", "path"), compare_directories())
def test_every_documented_compare_line_names_run_directories_recipes_write(document, path):
    project, experiment = (path.split("/") + ["*"])[1:3]
    runs = recipe_runs()
    if experiment in ("*", "<project>"):
        assert project in {p for p, _ in runs} or project == "<project>", (document, path)
    else:
        assert (project, experiment) in runs, (document, path)
