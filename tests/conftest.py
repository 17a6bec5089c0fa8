"""Data written once per session and shared by every test that only reads it (a test that
changes its data writes its own)."""

from pathlib import Path

import pytest
from training_helpers import write_tiny_shards

from str_lightning.app.cli import main


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``train``, ``train2d`` and ``val`` splits of :func:`training_helpers.write_tiny_shards`
    (the data ``tiny_config`` names)."""
    return write_tiny_shards(tmp_path_factory.mktemp("tiny_shards"))


@pytest.fixture(scope="session")
def small_synthetic_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic benchmark's small preset (seed 0) as ``str-lightning synth`` writes it."""
    root = tmp_path_factory.mktemp("synthetic") / "synthetic"
    assert main(["synth", "--out", str(root), "--preset", "small", "--quiet"]) == 0
    return root
