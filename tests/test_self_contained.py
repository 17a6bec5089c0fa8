"""The repository stands alone: no file cites a document that is not in it.

Design notes, reviews and issue threads outside the repository cannot be followed by a user;
what they said belongs in docs/ (docs/architecture.md is the map).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Spelled in pieces so that a plain grep of the repository for these citations finds none here.
SECTION = "\u00a7"
OUTSIDE_REFERENCE = re.compile("|".join((f"DESIGN {SECTION}", f"peers {SECTION}", "lightning-" + "patterns",
                                         r"\.\./" + "shared", r"[Ii]ssue" + r" [0-9]+")))
SKIPPED_DIRS = {".ci", ".git", ".venv", "runs", "data", "__pycache__", ".pytest_cache"}


def repository_files() -> list[Path]:
    """The tracked files (git), or every file outside the skipped directories without git."""
    try:
        listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                                check=True, timeout=60).stdout.decode().split("\0")
        files = [REPO / name for name in listed if name]
    except (OSError, subprocess.SubprocessError):
        files = [p for p in REPO.rglob("*") if p.is_file()]
    return [p for p in files if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(REPO).parts)
            and p != Path(__file__).resolve()]


def outside_references(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # pictures and other binary files
        return []
    return [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1) if OUTSIDE_REFERENCE.search(line)]


def test_no_file_cites_a_document_outside_the_repository():
    found = [hit for path in repository_files() for hit in outside_references(path)]
    assert not found, ("references to documents outside the repository; link into docs/ "
                       "instead:\n" + "\n".join(found))


def test_the_pattern_catches_each_kind():
    for line in (f"see DESIGN {SECTION}5", f"peers {SECTION}8", "lightning-" + "patterns C2",
                 "../" + "shared/x.md", "fixed in is" + "sue 9", "Iss" + "ue 12"):
        assert OUTSIDE_REFERENCE.search(line), line
    assert not OUTSIDE_REFERENCE.search(f"paper {SECTION}2.5, docs/architecture.md, no issues here")
