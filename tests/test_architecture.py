"""The layers of docs/architecture.md, kept by reading every module's imports, and ``ruff check``.

Imports are read with ``ast`` from the source (top-level ones and the lazy ones inside
functions alike), so nothing is imported to check them.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("str_lightning", "datamodules", "callbacks")

# layer -> the layers it must not import (docs/architecture.md, "Layers")
FORBIDDEN = {
    "core": {"reporting", "datamodules", "callbacks", "app"},
    "reporting": {"datamodules", "callbacks", "app"},
    "datamodules": {"reporting", "callbacks", "app"},
    "callbacks": {"datamodules", "app"},
    "app": set(),
}


def layer_of(module: str) -> str:
    """The layer a dotted module name belongs to."""
    top, _, rest = module.partition(".")
    if top != "str_lightning":
        return top
    sub = rest.split(".", 1)[0]
    if sub in ("app", "__main__"):  # ``python -m str_lightning`` is an entry point
        return "app"
    return "reporting" if sub == "reporting" else "core"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute dotted names."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if is_project_module(f"{base}.{alias.name}"))  # ``from pkg import mod``
    return found


def is_project_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def project_modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def layer_violations() -> list[tuple[str, str]]:
    violations = []
    for path in project_modules():
        importer = module_name(path)
        for imported in imported_modules(path):
            if imported.split(".", 1)[0] not in PACKAGES:
                continue
            if layer_of(imported) in FORBIDDEN[layer_of(importer)]:
                violations.append((importer, imported))
    return violations


def test_every_module_is_seen():
    names = {module_name(p) for p in project_modules()}
    assert {"str_lightning.app.cli", "str_lightning.modules.base", "datamodules.datamodule",
            "callbacks.wandb_run", "str_lightning.reporting.tables",
            "str_lightning.app.commands.compare"} <= names


def test_layers_import_only_downwards():
    unexpected = sorted(set(layer_violations()))
    assert not unexpected, "imports against the layer rule (docs/architecture.md):\n" + "\n".join(
        f"  {importer} imports {imported}" for importer, imported in unexpected)


COMMAND_HOME = REPO / "str_lightning" / "app" / "commands"
# what error handling outside the command home may take from argparse: the error it raises
ARGPARSE_ERRORS = {"ArgumentError", "ArgumentTypeError"}


def argparse_uses(path: Path) -> set[str]:
    """What ``path`` imports from argparse (``argparse`` for the whole module)."""
    used = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            used.update(alias.name for alias in node.names if alias.name == "argparse")
        elif isinstance(node, ast.ImportFrom) and node.module == "argparse":
            used.update(alias.name for alias in node.names)
    return used


def test_commands_are_parsed_only_in_the_command_home():
    outside = {module_name(path): sorted(argparse_uses(path) - ARGPARSE_ERRORS)
               for path in project_modules() if COMMAND_HOME not in path.parents}
    offenders = {module: used for module, used in outside.items() if used}
    assert not offenders, ("argument parsing belongs in str_lightning/app/commands/ (one module per "
                           f"command group); found argparse in: {offenders}")


def test_the_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    package = tmp_path / "str_lightning" / "nets"
    package.mkdir(parents=True)
    for name in ("blocks.py", "../reporting/compare.py", "../../callbacks/preemption.py"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).touch()
    (package / "x.py").write_text("def f():\n    from callbacks import preemption\n"
                                  "from . import blocks\nfrom ..reporting import compare\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    imported = imported_modules(package / "x.py")
    assert {"callbacks.preemption", "str_lightning.nets.blocks",
            "str_lightning.reporting.compare"} <= imported
    assert {layer_of(m) for m in imported} >= {"callbacks", "core", "reporting"}


COMPARE_PARTS = ("results_files", "runs", "tables")
"""The parts of ``str-lightning compare`` in str_lightning/reporting/, each importing only the
parts before it (the command itself, str_lightning/app/commands/compare.py, sits above them)."""


def test_compare_s_parts_import_in_one_direction():
    reporting = REPO / "str_lightning" / "reporting"
    backwards = []
    for index, part in enumerate(COMPARE_PARTS):
        later = {f"str_lightning.reporting.{name}" for name in COMPARE_PARTS[index + 1:]}
        imported = imported_modules(reporting / f"{part}.py")
        backwards += [(part, name) for name in sorted(imported & later)]
    assert not backwards, "compare's parts import one way, " + " <- ".join(COMPARE_PARTS) + ":\n" + (
        "\n".join(f"  {part} imports {imported}" for part, imported in backwards))


def ruff_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("ruff")  # the environment's own ruff first
    ruff = str(beside_python) if beside_python.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -e '.[dev]'")
    return [ruff, "check", "."]


def test_ruff_check_passes():
    result = subprocess.run(ruff_command(), cwd=REPO, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
