"""The str-lightning command as users run it: subprocesses of ``python -m str_lightning``."""

import numpy as np
from cli_runners import run_command
from helpers import small_smpl_arrays

from str_lightning.app.cli import main
from str_lightning.body import load_body_files, load_smpl_arrays
from str_lightning.body.model_files import SMPL_SHAPES


def test_help_lists_body_commands():
    result = run_command("body", "--help")
    assert result.returncode == 0
    for command in ("mannequin", "convert", "demo"):
        assert command in result.stdout


def test_mannequin_command_writes_loadable_identical_files(tmp_path):
    assert main(["body", "mannequin", str(tmp_path / "a")]) == 0
    assert main(["body", "mannequin", str(tmp_path / "b")]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["J_regressor_extra.npy", "J_regressor_h36m.npy", "SMPL_NEUTRAL.npz",
                     "smpl_mean_params.npz"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    written = load_body_files(tmp_path / "a")
    built = load_body_files("mannequin")
    for key in SMPL_SHAPES:
        np.testing.assert_array_equal(written.smpl[key], built.smpl[key])


def test_convert_command(tmp_path):
    import pickle

    arrays = small_smpl_arrays(4)
    src = tmp_path / "model.pkl"
    with open(src, "wb") as fh:
        pickle.dump(arrays, fh, protocol=2)
    result = run_command("body", "convert", str(src), str(tmp_path / "out.npz"))
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(load_smpl_arrays(tmp_path / "out.npz")["posedirs"], arrays["posedirs"])


def test_missing_file_is_a_clear_error(tmp_path):
    result = run_command("body", "convert", str(tmp_path / "missing.pkl"), str(tmp_path / "o.npz"))
    assert result.returncode == 2
    assert "missing.pkl does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_writes_a_picture(tmp_path):
    result = run_command("body", "demo", "--out", str(tmp_path), "--frames", "4")
    assert result.returncode == 0, result.stderr
    png = tmp_path / "walk.png"
    from matplotlib.image import imread

    pixels = imread(png)
    assert pixels.shape[0] > 100 and pixels[..., :3].std() > 0.05  # not blank
