"""``str-lightning reproduce released``: which checkpoint, which test sets, which files, and the
verdicts. The whole run on replicas is in tests/test_replica_pipeline.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from replicas import write_db_replica

from datamodules.converters import convert, files_for_directory, released_file
from str_lightning.app.cli import main
from str_lightning.app.reproduction import Comparison, converted_test_sets, resolve_release
from str_lightning.evaluation.published import RELEASES

REPO = Path(__file__).resolve().parents[1]


def run(*argv: str) -> int:
    return main(["reproduce", "released", *argv])


def test_the_release_comes_from_the_file_name_or_is_named(tmp_path, capsys):
    renamed = tmp_path / "my_tcmr.pth.tar"
    renamed.write_bytes(b"")
    assert run("--method", "tcmr", "--checkpoint", str(renamed), "--data-root", str(tmp_path),
               "--body-model", "x") == 2
    assert "not a released file name" in capsys.readouterr().err
    assert resolve_release("tcmr", renamed, "tcmr_table6_h36m_test.pth.tar").tests == {
        "h36m": "h36m/test-front-tight"}
    with pytest.raises(ValueError, match=r"vibe_model_wo_3dpw.pth.tar is a VIBE release, but "
                                         r"--method tcmr"):
        resolve_release("tcmr", tmp_path / "vibe_model_wo_3dpw.pth.tar", None)


def test_nothing_converted_is_an_error_with_the_commands_that_convert_it(tmp_path):
    release = RELEASES["tcmr_table4_mpii3dd_h36m_test.pth.tar"]
    with pytest.raises(ValueError) as error:
        converted_test_sets(release, tmp_path)
    message = str(error.value)
    assert f"--db DOWNLOADS/mpii3d_val_scale12_db.pt --out {tmp_path}/mpii3d/test-scale12" in message
    assert f"--db DOWNLOADS/h36m_test_25fps_nosmpl_db.pt --out {tmp_path}/h36m/test" in message


def test_a_test_set_converted_from_another_file_is_refused(tmp_path):
    """VIBE's 3dpw_test_db.pt holds other crops than TCMR's: TCMR's figures need TCMR's file."""
    vibe = write_db_replica(released_file("vibe", "3dpw_test_db.pt"), tmp_path / "downloads")
    convert("vibe", "3dpw", "test", vibe, tmp_path / "elsewhere")
    shutil.move(tmp_path / "elsewhere", tmp_path / "shards/3dpw/test")
    with pytest.raises(ValueError, match=r"shards/3dpw/test: converted from VIBE's "
                                         r"3dpw_test_db.pt, but the published figures were "
                                         r"computed on TCMR's 3dpw_test_db.pt"):
        converted_test_sets(RELEASES["tcmr_table4_3dpw_test.pth.tar"], tmp_path / "shards")
    tcmr = tmp_path / "tcmr" / "3dpw_test_db.pt"
    tcmr.parent.mkdir()
    shutil.copy(vibe, tcmr)  # the same replica, now converted as TCMR's file
    shutil.rmtree(tmp_path / "shards/3dpw/test")
    convert("tcmr", "3dpw", "test", tcmr, tmp_path / "shards/3dpw/test")
    assert converted_test_sets(RELEASES["tcmr_table4_3dpw_test.pth.tar"], tmp_path / "shards") \
        == {"3dpw": (tmp_path / "shards/3dpw/test").resolve()}


@pytest.mark.parametrize(("ours", "published", "agreement", "verdict"), [
    (52.9, 52.7, 0.5, "agrees"), (52.1, 52.7, 0.5, "DIFFERS"), (30.0, 27.99, None, "not comparable"),
    (52.0, None, 0.5, "no published figure")])
def test_verdicts(ours, published, agreement, verdict):
    comparison = Comparison("3dpw", "pa_mpjpe", ours, published, agreement)
    assert comparison.verdict == verdict
    if published is not None:
        assert comparison.difference == pytest.approx(ours - published)


def test_every_release_is_tested_on_directories_of_its_own_source():
    for release in RELEASES.values():
        for directory in release.tests.values():
            assert any(f.source == release.method for f in files_for_directory(directory))


def test_the_docs_table_of_releases_is_the_table():
    text = (REPO / "docs/evaluation.md").read_text()
    rows = re.findall(r"^\| `(\w+\.pth\.tar)` \| ([^|]+) \|", text, re.MULTILINE)
    assert [name for name, _ in rows] == list(RELEASES)
    for name, cell in rows:
        directories = re.findall(r"`([^`]+)`", cell)
        expected = list(RELEASES[name].tests.values())
        assert directories in (expected, []), name  # [] for "the same"
