"""``str-lightning data index|check`` on real shards, good and bad."""

import io
import json
import tarfile

import numpy as np
from data_helpers import make_clip, write_split

from str_lightning.app.cli import main


def run_data(*argv: str) -> int:
    """``str-lightning data ARGV`` as the command runs it (errors: one message, status 2)."""
    return main(["data", *argv])


def write_foreign_tar(path, clips: dict[str, dict]) -> None:
    """A tar written without our writer (so it may break the schema): key -> clip dict."""
    with tarfile.open(path, "w") as tar:
        for key, clip in clips.items():
            for name, value in clip.items():
                if name == "meta":
                    data, member = json.dumps(value).encode(), f"{key}.meta.json"
                else:
                    buffer = io.BytesIO()
                    np.save(buffer, value)
                    data, member = buffer.getvalue(), f"{key}.{name}.npy"
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_check_passes_good_shards_and_prints_totals(tmp_path, capsys):
    write_split(tmp_path, [3, 4, 5])
    assert run_data("check", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "2 shards, 3 samples, 12 frames" in out and "OK" in out


def test_check_reports_the_clips_and_frames_training_windows_skip(tmp_path, capsys):
    write_split(tmp_path, [10, 16, 40, 3])
    assert run_data("check", str(tmp_path)) == 0
    assert "2 of 4 clips (13 of 69 frames) shorter than seq_len=16: no training windows from " \
        "them (evaluation covers every frame)" in capsys.readouterr().out
    assert run_data("check", str(tmp_path), "--seq-len", "41") == 0
    assert "4 of 4 clips (69 of 69 frames) shorter than seq_len=41" in capsys.readouterr().out


def test_index_then_check_finds_each_bad_sample(tmp_path, capsys):
    nan = make_clip("nan", 4)
    nan["features"][0, 0] = np.nan
    missing = make_clip("missing", 4)
    del missing["kp2d"]
    write_foreign_tar(tmp_path / "part-0.tar", {"good": make_clip("good", 4), "nan": nan})
    write_foreign_tar(tmp_path / "part-1.tar", {"missing": missing})
    assert run_data("index", str(tmp_path)) == 0
    capsys.readouterr()
    assert run_data("check", str(tmp_path)) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert "shard part-0.tar, sample 'nan': member 'features': expected finite values" in err[0]
    assert "shard part-1.tar, sample 'missing': missing member(s) ['kp2d']" in err[1]


def test_check_reports_checksum_mismatch_and_wrong_feature_dim(tmp_path, capsys):
    write_foreign_tar(tmp_path / "a.tar", {"k0": make_clip("k0", 4)})
    narrow = make_clip("k1", 4)
    narrow["features"] = narrow["features"][:, :2]
    write_foreign_tar(tmp_path / "b.tar", {"k1": narrow})
    assert run_data("index", str(tmp_path)) == 2
    assert "shard b.tar, sample 'k1': feature_dim: expected 6" in capsys.readouterr().err
    (tmp_path / "b.tar").unlink()
    assert run_data("index", str(tmp_path)) == 0
    write_foreign_tar(tmp_path / "a.tar", {"k0": make_clip("k0", 4, seed=5)})
    capsys.readouterr()
    assert run_data("check", str(tmp_path)) == 1
    assert f"shard {tmp_path / 'a.tar'}: sha256 expected" in capsys.readouterr().err


def test_check_names_a_truncated_shard(tmp_path, capsys):
    write_split(tmp_path, [30, 30], per_shard=2)
    shard = tmp_path / "train-000000.tar"
    shard.write_bytes(shard.read_bytes()[:5000])
    assert run_data("check", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "train-000000.tar: sha256 expected" in err and "truncated" in err


def test_index_of_an_empty_directory_is_an_error(tmp_path, capsys):
    assert run_data("index", str(tmp_path)) == 2
    assert "no *.tar shards" in capsys.readouterr().err
