"""The released db files and their shard directories: the table, docs/data.md's file map, and
``data convert`` refusing a file written as another dataset, split or variant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import joblib
import numpy as np
import pytest
from test_converters import LENGTHS, make_db

from datamodules.converters import (
    RELEASED_FILES,
    REPORT_NAME,
    WrongVariantError,
    convert,
    files_for_directory,
    released_file,
)
from datamodules.converters.datasets import DATASETS
from str_lightning.app.cli import main
from str_lightning.runs.config_files import compose_file

REPO = Path(__file__).resolve().parents[1]
MAP_ROW = re.compile(r"^\| (tcmr|vibe) \| `([^`]+)` \|(.+)\|$", re.MULTILINE)
MIX_ROW = re.compile(r"^\| `(\w+\.yaml)` \|(.+)\|$", re.MULTILINE)


def map_section() -> str:
    return (REPO / "docs/data.md").read_text().split("## The file map", 1)[1].split("\n## ", 1)[0]


def file_map() -> dict[tuple[str, str], list[str]]:
    """docs/data.md's file map: (source, file) -> its other cells (variant, read by, command,
    directory, counts)."""
    return {(m.group(1), m.group(2)): [c.strip() for c in m.group(3).split(" | ")]
            for m in MAP_ROW.finditer(map_section())}


def test_every_released_file_has_a_known_dataset_split_and_one_home():
    for entry in RELEASED_FILES:
        spec = DATASETS[entry.dataset]
        assert entry.split in spec.splits and (entry.source in spec.fps or entry.dataset == "insta")
        if entry.directory:
            dataset, split_dir = entry.directory.split("/")
            assert dataset == entry.dataset and split_dir.split("-")[0] == entry.split
    homes = {}
    for entry in RELEASED_FILES:
        assert (entry.source, entry.name) not in homes, entry
        homes[entry.source, entry.name] = entry.directory
    # one directory holds one variant; only H36M's front-camera test file comes with and
    # without (unused) SMPL columns
    shared = {d for d in homes.values() if d and len(files_for_directory(d)) > 1}
    assert shared == {"h36m/test-front-tight"}


def test_the_docs_file_map_is_the_table():
    documented = file_map()
    assert set(documented) == {(e.source, e.name) for e in RELEASED_FILES}
    for entry in RELEASED_FILES:
        variant, _, command, directory, _ = documented[entry.source, entry.name]
        assert variant == entry.variant
        if entry.directory:
            assert command == f"`{entry.command()}`"
            assert directory == f"`{entry.directory}`"
        else:
            assert directory == "not used"


def test_the_docs_mix_table_lists_the_directories_each_data_config_reads():
    documented = {m.group(1): [re.findall(r"`([^`]+)`", cell) for cell in m.group(2).split(" | ")]
                  for m in MIX_ROW.finditer(map_section())}
    assert len(documented) == 8
    for name, (_, two_d, three_d, val, test) in documented.items():
        data = compose_file(REPO / "configs/data" / name)
        groups = {g: [d["path"] for d in data["train_datasets"] if d["group"] == g]
                  for g in ("2d", "3d")}
        motion = [data["motion_dataset"]] if data.get("motion_dataset") else []
        assert (two_d, three_d) == (groups["2d"], groups["3d"] + motion), name
        assert (val, test) == (list(data["val_datasets"].values()),
                               list(data["test_datasets"].values())), name
        for directory in [*two_d, *three_d, *val, *test]:
            assert files_for_directory(directory), f"{name}: {directory} is in no file's home"


def write_named(tmp_path: Path, name: str, dataset: str, split: str) -> Path:
    path = tmp_path / "downloads" / name
    path.parent.mkdir(exist_ok=True)
    joblib.dump(make_db(dataset, split, np.random.default_rng(0)), path)
    return path


def test_a_released_file_converts_into_its_directory_and_says_which_it_was(tmp_path):
    db = write_named(tmp_path, "3dpw_train_occ_db.pt", "3dpw", "train")
    out = convert("tcmr", "3dpw", "train", db, tmp_path / "shards/3dpw/train-occ")
    report = json.loads((out / REPORT_NAME).read_text())
    assert (report["released_file"], report["shard_directory"]) == (
        "3dpw_train_occ_db.pt", "3dpw/train-occ")
    assert (report["seq_len"], report["short_clips"], report["short_clip_frames"]) == (
        16, sum(n < 16 for n in LENGTHS), sum(n for n in LENGTHS if n < 16))


@pytest.mark.parametrize(("name", "dataset", "split", "out", "message"), [
    ("3dpw_train_db.pt", "3dpw", "train", "3dpw/train-occ",
     (r"3dpw/train-occ: this is the shard directory of TCMR's 3dpw_train_occ_db.pt "
     r"\(occlusion-augmented crops\), but --db 3dpw_train_db.pt is TCMR's 3dpw train file "
     r"\(plain crops\): convert it into <data root>/3dpw/train")),
    ("h36m_test_25fps_nosmpl_db.pt", "h36m", "test", "h36m/test-front-tight",
     (r"shard directory of TCMR's h36m_test_front_25fps_tight_nosmpl_db.pt or TCMR's "
     r"h36m_test_front_25fps_tight_db.pt .* is TCMR's h36m test file \(S9 \+ S11, all cameras")),
    ("3dpw_test_db.pt", "3dpw", "train", "3dpw/train",
     (r"3dpw_test_db.pt is TCMR's 3dpw test file \(plain crops\), but the command writes it as "
     r"--dataset 3dpw --split train; use --dataset 3dpw --split test")),
    ("mpii3d_val_scale12_db.pt", "h36m", "test", "h36m/test",
     r"is TCMR's mpii3d test file .* --dataset h36m --split test; use --dataset mpii3d"),
])
def test_a_file_written_as_another_variant_is_refused_naming_both(tmp_path, name, dataset, split,
                                                                   out, message):
    entry = released_file("tcmr", name)
    db = write_named(tmp_path, name, entry.dataset, entry.split)
    with pytest.raises(WrongVariantError, match=message):
        convert("tcmr", dataset, split, db, tmp_path / "shards" / out)
    assert not (tmp_path / "shards" / out).exists()


def test_a_vibe_file_never_lands_in_the_directory_of_tcmrs_namesake(tmp_path, capsys):
    db = write_named(tmp_path, "3dpw_test_db.pt", "3dpw", "test")
    assert main(["data", "convert", "--source", "vibe", "--dataset", "3dpw", "--split", "test",
                 "--db", str(db), "--out", str(tmp_path / "shards/3dpw/test")]) == 2
    err = capsys.readouterr().err
    assert "shard directory of TCMR's 3dpw_test_db.pt" in err and "3dpw/test-vibe" in err
    assert main(["data", "convert", "--source", "vibe", "--dataset", "3dpw", "--split", "test",
                 "--db", str(db), "--out", str(tmp_path / "shards/3dpw/test-vibe")]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'shards/3dpw/test-vibe'}: 1 of 3 clips (5 of 60 frames) shorter than " \
        "seq_len=16: no training windows from them (evaluation covers every frame)" in out


def test_a_name_only_the_other_source_releases_is_refused(tmp_path):
    db = write_named(tmp_path, "mpii3d_train_db.pt", "mpii3d", "train")
    with pytest.raises(WrongVariantError, match=r"mpii3d_train_db.pt is VIBE's mpii3d train file "
                                                r".* --source tcmr was given; convert it with "
                                                r"--source vibe"):
        convert("tcmr", "mpii3d", "train", db, tmp_path / "out")


def test_names_no_release_uses_are_not_checked(tmp_path):
    db = write_named(tmp_path, "my_own_3dpw.pt", "3dpw", "train")
    assert released_file("tcmr", db.name) is None
    convert("tcmr", "3dpw", "train", db, tmp_path / "shards/3dpw/train-occ")
