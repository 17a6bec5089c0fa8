import pickle
import sys
import types

import numpy as np
import pytest
from helpers import small_smpl_arrays

from str_lightning.body import BodyModelFileError, load_body_files, load_smpl_arrays
from str_lightning.body.model_files import SMPL_SHAPES, convert_pkl_to_npz, save_smpl_npz


@pytest.fixture
def fake_chumpy_and_scipy(monkeypatch):
    """Modules named like chumpy and scipy.sparse, present only while the test pickles."""
    names = ("chumpy", "chumpy.ch", "scipy", "scipy.sparse", "scipy.sparse._csc")
    modules = {name: types.ModuleType(name) for name in names}

    class Ch:
        def __init__(self, x):
            self.x = x

    class csc_matrix:
        def __init__(self, dense):
            cols = [np.nonzero(dense[:, j])[0] for j in range(dense.shape[1])]
            self.indices = np.concatenate(cols).astype(np.int32)
            self.indptr = np.cumsum([0] + [len(c) for c in cols]).astype(np.int32)
            self.data = np.concatenate([dense[c, j] for j, c in enumerate(cols)])
            self._shape = dense.shape

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    csc_matrix.__module__, csc_matrix.__qualname__ = "scipy.sparse._csc", "csc_matrix"
    modules["chumpy.ch"].Ch, modules["scipy.sparse._csc"].csc_matrix = Ch, csc_matrix
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return Ch, csc_matrix


def write_official_style_pickle(path, arrays, fake_chumpy_and_scipy, monkeypatch):
    ch, csc = fake_chumpy_and_scipy
    content = dict(arrays)
    for key in ("v_template", "weights", "shapedirs", "posedirs"):
        content[key] = ch(arrays[key])
    sparse_reg = arrays["J_regressor"] * (np.abs(arrays["J_regressor"]) > 1.5)
    content["J_regressor"] = csc(sparse_reg)
    content["bs_style"] = "lbs"
    with open(path, "wb") as fh:
        pickle.dump(content, fh, protocol=2)
    for name in ("chumpy", "chumpy.ch", "scipy", "scipy.sparse", "scipy.sparse._csc"):
        monkeypatch.delitem(sys.modules, name)
    return sparse_reg


def test_npz_round_trip(tmp_path):
    arrays = small_smpl_arrays()
    path = save_smpl_npz(arrays, tmp_path / "SMPL_NEUTRAL.npz")
    loaded = load_smpl_arrays(path)
    assert set(loaded) == set(SMPL_SHAPES)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_chumpy_pickle_loads_without_chumpy(tmp_path, fake_chumpy_and_scipy, monkeypatch):
    arrays = small_smpl_arrays(1)
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    sparse_reg = write_official_style_pickle(path, arrays, fake_chumpy_and_scipy, monkeypatch)
    assert "chumpy" not in sys.modules
    loaded = load_smpl_arrays(path)
    assert "chumpy" not in sys.modules
    for key in ("v_template", "weights", "shapedirs", "posedirs", "f", "kintree_table"):
        np.testing.assert_array_equal(loaded[key], arrays[key])
    np.testing.assert_array_equal(loaded["J_regressor"], sparse_reg)
    out = convert_pkl_to_npz(path, tmp_path / "out.npz")
    np.testing.assert_array_equal(load_smpl_arrays(out)["J_regressor"], sparse_reg)


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"v_template": _RunsAShellCommand(marker)}, fh, protocol=2)
    with pytest.raises(BodyModelFileError, match=r"refusing to load global (posix|os)\.system"):
        load_smpl_arrays(path)
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("subprocess", "Popen"),
                                         ("numpy", "load"), ("collections", "OrderedDict")])
def test_any_other_global_is_refused(tmp_path, module, name):
    path = tmp_path / "m.pkl"
    # GLOBAL opcode for module.name, then STOP: the smallest pickle naming that global.
    path.write_bytes(b"c" + module.encode() + b"\n" + name.encode() + b"\n.")
    with pytest.raises(BodyModelFileError, match=f"refusing to load global {module}.{name}"):
        load_smpl_arrays(path)


def test_missing_model_file_and_directory(tmp_path):
    with pytest.raises(BodyModelFileError, match="does not exist"):
        load_smpl_arrays(tmp_path / "SMPL_NEUTRAL.npz")
    with pytest.raises(BodyModelFileError, match="mannequin"):
        load_body_files(tmp_path / "nowhere")


def test_wrong_shape_names_key_and_both_shapes(tmp_path):
    arrays = small_smpl_arrays()
    arrays["weights"] = arrays["weights"][:, :23]
    path = tmp_path / "bad.npz"
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(BodyModelFileError) as err:
        load_smpl_arrays(path)
    message = str(err.value)
    assert "bad.npz" in message and "'weights'" in message
    assert "(6890, 23)" in message and "(6890, 24)" in message


def test_missing_key_is_named(tmp_path):
    arrays = small_smpl_arrays()
    del arrays["posedirs"]
    path = tmp_path / "nokey.npz"
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(BodyModelFileError, match=r"missing keys \['posedirs'\]"):
        load_smpl_arrays(path)


def test_directory_source_checks_extra_files(tmp_path):
    save_smpl_npz(small_smpl_arrays(), tmp_path / "SMPL_NEUTRAL.npz")
    np.save(tmp_path / "J_regressor_extra.npy", np.zeros((9, 6890)))
    np.save(tmp_path / "J_regressor_h36m.npy", np.zeros((16, 6890)))
    np.savez(tmp_path / "smpl_mean_params.npz", pose=np.zeros(144), shape=np.zeros(10), cam=np.zeros(3))
    with pytest.raises(BodyModelFileError, match=r"J_regressor_h36m.npy.*\(16, 6890\).*\(17, 6890\)"):
        load_body_files(tmp_path)
    np.save(tmp_path / "J_regressor_h36m.npy", np.zeros((17, 6890)))
    files = load_body_files(tmp_path)
    assert files.j_regressor_h36m.shape == (17, 6890)
    assert set(files.mean_params) == {"pose", "shape", "cam"}


@pytest.mark.parametrize("cut", ["header", "middle", "garbage"])
def test_corrupted_npz_names_the_file(tmp_path, cut):
    path = save_smpl_npz(small_smpl_arrays(), tmp_path / "SMPL_NEUTRAL.npz")
    data = path.read_bytes()
    if cut == "header":
        path.write_bytes(data[:20])
    elif cut == "middle":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(data[:100] + bytes(len(data) - 200) + data[-100:])
    with pytest.raises(BodyModelFileError, match=r"SMPL_NEUTRAL\.npz: .*truncated or corrupted"):
        load_smpl_arrays(path)
