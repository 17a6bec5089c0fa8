"""Converters from TCMR/VIBE db files: real joblib/h5 files with the keys, shapes and dtypes of
docs/data.md, converted and read back through the schema validator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py  # the .h5 and .pt test files are written with the real libraries
import joblib
import numpy as np
import pytest

from datamodules.converters import (
    REPORT_NAME,
    ConversionError,
    JoblibFormatError,
    UnsafePickleError,
    convert,
    load_joblib_pickle,
)
from datamodules.converters.keypoints import normalise_to_crop
from datamodules.schema import iterate_clips, read_manifest
from str_lightning.body.joints import COMMON14, INSTA25, MPII3D17, SPIN49, convert_joints

LENGTHS = (23, 5, 32)  # uneven, one shorter than a 16-frame window, one of exactly 2 clips
FEATURE_DIM = 8


def _names(prefix: str, lengths=LENGTHS) -> np.ndarray:
    return np.concatenate([[f"{prefix}{i}_0"] * n for i, n in enumerate(lengths)])


def _frame_ids(lengths=LENGTHS) -> np.ndarray:
    return np.concatenate([np.arange(3, 3 + n) for n in lengths])


def _keypoints_px(rng, rows: int, joints: int) -> np.ndarray:
    """Pixel keypoints around (300, 200), confidence 0/1, float64 like TCMR's and VIBE's files."""
    kp = np.empty((rows, joints, 3))
    kp[..., :2] = rng.uniform(150, 350, (rows, joints, 2))
    kp[..., 2] = rng.integers(0, 2, (rows, joints))
    return kp


def _bbox(rows: int) -> np.ndarray:
    return np.tile([250.0, 250.0, 240.0, 240.0], (rows, 1))


def _common_db(rng, prefix: str, joints2d: int, lengths=LENGTHS) -> dict[str, np.ndarray]:
    rows = sum(lengths)
    return {
        "vid_name": _names(prefix, lengths),
        "img_name": np.array([f"imgs/{prefix}/image_{i:05d}.jpg" for i in _frame_ids(lengths)]),
        "joints2D": _keypoints_px(rng, rows, joints2d),
        "bbox": _bbox(rows),
        "features": rng.uniform(0, 1, (rows, FEATURE_DIM)).astype(np.float32),
    }


def make_db(dataset: str, split: str, rng) -> dict[str, np.ndarray]:
    """A small db with the layout of docs/data.md for one dataset split."""
    rows = sum(LENGTHS)
    if dataset == "amass":
        return {"theta": rng.standard_normal((rows, 82)), "vid_name": _names("CMU_01_")}
    if dataset == "3dpw":
        db = _common_db(rng, "courtyard_", 14)
        db.update(frame_id=_frame_ids(),
                  joints3D=rng.standard_normal((rows, 49 if split == "train" else 14, 3))
                  .astype(np.float32),
                  pose=rng.standard_normal((rows, 72)).astype(np.float32),
                  shape=rng.standard_normal((rows, 10)).astype(np.float32),
                  valid=rng.integers(0, 2, rows).astype(bool))
        return db
    if dataset == "mpii3d":
        db = _common_db(rng, "subj1_seq1_vid0_seg", 49)
        db["frame_id"] = np.array([f"frame_{i:06d}" for i in _frame_ids()])
        joints3d = convert_joints(rng.standard_normal((rows, 17, 3)), "mpii3d17", "spin49") \
            if split == "test" else rng.standard_normal((rows, 49, 3))
        db["joints3D"] = joints3d
        if split == "test":
            db["valid_i"] = rng.integers(0, 2, (rows, 1)).astype(np.float64)
        return db
    if dataset == "h36m":
        db = _common_db(rng, "S9_Directions_1_", 49)
        db.update(frame_id=_frame_ids(), joints3D=rng.standard_normal((rows, 49, 3)),
                  pose=rng.standard_normal((rows, 72)), shape=rng.standard_normal((rows, 10)))
        return db
    if dataset == "posetrack":
        return _common_db(rng, "000001_bonn_train.json_", 49)
    if dataset == "pennaction":
        return _common_db(rng, "0001_", 14)
    raise AssertionError(dataset)


def write_db(db: dict[str, np.ndarray], path: Path) -> Path:
    joblib.dump(db, path)
    return path


def make_insta(rng) -> dict[str, np.ndarray]:
    rows = sum(LENGTHS)
    return {
        "vid_name": np.array([n.encode() for n in _names("insta_video_")]),
        "frame_id": _frame_ids(),
        "joints2D": np.concatenate([rng.uniform(0, 224, (rows, 25, 2)),
                                    rng.uniform(0, 1, (rows, 25, 1))], axis=-1),
        "features": rng.uniform(0, 1, (rows, FEATURE_DIM)).astype(np.float32),
    }


def write_h5(db: dict[str, np.ndarray], path: Path) -> Path:
    with h5py.File(path, "w") as handle:
        for key, value in db.items():
            handle.create_dataset(key, data=value)
    return path


def read_back(out: Path) -> list[dict]:
    return list(iterate_clips(out, validate=True))


def _concat(clips: list[dict], key: str) -> np.ndarray:
    return np.concatenate([clip[key] for clip in clips])


CASES = [("3dpw", "train"), ("3dpw", "val"), ("3dpw", "test"), ("mpii3d", "train"),
         ("mpii3d", "test"), ("h36m", "train"), ("h36m", "test"), ("posetrack", "train"),
         ("pennaction", "train"), ("amass", "train")]
SUPERVISION = {  # (kp2d, kp3d, smpl, joints3d written)
    ("3dpw", "train"): (True, True, True, "spin49"),
    ("3dpw", "val"): (True, True, True, "common14"),
    ("3dpw", "test"): (True, True, True, "common14"),
    ("mpii3d", "train"): (True, True, False, "spin49"),
    ("mpii3d", "test"): (True, True, False, "mpii3d17"),
    ("h36m", "train"): (True, True, True, "spin49"),
    ("h36m", "test"): (True, True, True, "spin49"),
    ("posetrack", "train"): (True, False, False, ""),
    ("pennaction", "train"): (True, False, False, ""),
    ("amass", "train"): (False, False, True, ""),
}


@pytest.mark.parametrize(("dataset", "split"), CASES)
def test_convert_round_trips_every_pt_dataset(tmp_path, dataset, split):
    rng = np.random.default_rng(0)
    db = make_db(dataset, split, rng)
    out = convert("tcmr" if dataset == "h36m" else "vibe", dataset, split,
                  write_db(db, tmp_path / "db.pt"), tmp_path / "out", max_clip_len=16)
    clips = read_back(out)
    manifest = read_manifest(out)
    assert (manifest.dataset, manifest.split, manifest.frames) == (dataset, split, sum(LENGTHS))

    # grouping: one video per vid_name run, clips in order, no frame lost or repeated
    videos = [c["meta"]["video"] for c in clips]
    assert list(dict.fromkeys(videos)) == list(dict.fromkeys(db["vid_name"].tolist()))
    for name, length in zip(dict.fromkeys(videos), LENGTHS):
        own = [c for c in clips if c["meta"]["video"] == name]
        assert [c["meta"]["start"] for c in own] == \
            np.cumsum([0] + [len(c["valid"]) for c in own[:-1]]).tolist()
        assert sum(len(c["valid"]) for c in own) == length
        if split == "train":
            assert len(own) == -(-length // 16)
            assert max(len(c["valid"]) for c in own) <= 16
            assert max(len(c["valid"]) for c in own) - min(len(c["valid"]) for c in own) <= 1
        else:
            assert len(own) == 1

    kp2d, kp3d, smpl, joints3d = SUPERVISION[dataset, split]
    for clip in clips:
        assert clip["meta"]["supervision"] == {"kp2d": kp2d, "kp3d": kp3d, "smpl": smpl}
        assert clip["meta"]["joints3d"] == joints3d
    if smpl and dataset == "amass":
        np.testing.assert_array_equal(_concat(clips, "pose"), db["theta"][:, :72].astype(np.float32))
        np.testing.assert_array_equal(_concat(clips, "shape"), db["theta"][:, 72:].astype(np.float32))
        return
    if smpl:
        np.testing.assert_array_equal(_concat(clips, "pose"), db["pose"].astype(np.float32))
        np.testing.assert_array_equal(_concat(clips, "shape"), db["shape"].astype(np.float32))
    np.testing.assert_array_equal(_concat(clips, "features"), db["features"])
    np.testing.assert_array_equal(_concat(clips, "bbox"), db["bbox"].astype(np.float32))
    np.testing.assert_array_equal(_concat(clips, "frame_id"), _frame_ids())
    if kp3d:
        expected = db["joints3D"] if joints3d != "mpii3d17" else db["joints3D"][
            :, [SPIN49.index(n) for n in MPII3D17]]
        np.testing.assert_array_equal(_concat(clips, "kp3d"), expected.astype(np.float32))
    valid_key = {"3dpw": "valid", "mpii3d": "valid_i"}.get(dataset)
    expected_valid = np.ones(sum(LENGTHS)) if valid_key not in db else db[valid_key].reshape(-1)
    np.testing.assert_array_equal(_concat(clips, "valid"), expected_valid.astype(np.uint8))
    _assert_kp2d_from_pixels(_concat(clips, "kp2d"), db["joints2D"], db["bbox"])


def _assert_kp2d_from_pixels(kp2d: np.ndarray, source_px: np.ndarray, bbox: np.ndarray) -> None:
    """Each source joint lands at its own name's spin-49 slot, normalised with the 1.2 box."""
    names = SPIN49 if source_px.shape[1] == 49 else COMMON14
    half_sides = 1.2 * bbox[:, 2:4] / 2
    for j, name in enumerate(names):
        slot = kp2d[:, SPIN49.index(name)]
        seen = source_px[:, j, 2] > 0
        expected = (source_px[:, j, :2] - bbox[:, :2]) / half_sides
        np.testing.assert_allclose(slot[seen, :2], expected[seen], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(slot[:, 2], source_px[:, j, 2].astype(np.float32))
        assert not slot[~seen].any()
    absent = [i for i, n in enumerate(SPIN49) if n not in names]
    assert not kp2d[:, absent].any()


def test_pennaction_is_read_in_its_stored_common_order(tmp_path):
    """TCMR and VIBE read this common-14 file as PennAction's native order; we must not."""
    rng = np.random.default_rng(1)
    db = make_db("pennaction", "train", rng)
    db["joints2D"][..., 2] = 1.0
    db["joints2D"][:, COMMON14.index("headtop"), :2] = [250.0, 106.0]  # top of the 1.2 box
    out = convert("tcmr", "pennaction", "train", write_db(db, tmp_path / "p.pt"), tmp_path / "o")
    kp2d = _concat(read_back(out), "kp2d")
    np.testing.assert_allclose(kp2d[:, SPIN49.index("headtop")], np.tile([0.0, -1.0, 1.0],
                                                                        (len(kp2d), 1)))


def test_normalisation_maps_the_corners_of_the_scaled_box_to_plus_minus_one():
    bbox = np.array([[100.0, 50.0, 40.0, 80.0]])
    corners = np.array([[[100 - 24, 50 - 48, 1], [100 + 24, 50 + 48, 1], [100, 50, 1],
                         [0, 0, 0]]], dtype=np.float64)
    np.testing.assert_allclose(normalise_to_crop(corners, bbox)[0],
                               [[-1, -1, 1], [1, 1, 1], [0, 0, 1], [0, 0, 0]])
    no_box = normalise_to_crop(corners, np.zeros((1, 4)))
    assert not no_box.any()


def test_insta_h5_converts_with_crop_pixel_normalisation(tmp_path):
    rng = np.random.default_rng(2)
    db = make_insta(rng)
    db["joints2D"][:, 0] = [0.0, 224.0, 1.0]  # the crop's bottom-left corner: (-1, +1)
    out = convert("vibe", "insta", "train", write_h5(db, tmp_path / "insta_train_db.h5"),
                  tmp_path / "out", max_clip_len=16)
    clips = read_back(out)
    assert list(dict.fromkeys(c["meta"]["video"] for c in clips)) == [
        "insta_video_0_0", "insta_video_1_0", "insta_video_2_0"]
    assert all("bbox" not in c and c["meta"]["supervision"]["kp2d"] for c in clips)
    kp2d = _concat(clips, "kp2d")
    np.testing.assert_allclose(kp2d[:, SPIN49.index("op_rheel")], np.tile([-1.0, 1.0, 1.0],
                                                                          (len(kp2d), 1)))
    for j, name in enumerate(INSTA25):
        np.testing.assert_allclose(kp2d[:, SPIN49.index(name), :2],
                                   db["joints2D"][:, j, :2] / 112 - 1, atol=1e-5)
    assert not kp2d[:, SPIN49.index("op_midhip")].any()
    np.testing.assert_array_equal(_concat(clips, "features"), db["features"])
    np.testing.assert_array_equal(_concat(clips, "frame_id"), _frame_ids())


def test_h36m_zero_smpl_and_use_smpl_false_give_no_smpl(tmp_path):
    rng = np.random.default_rng(3)
    db = make_db("h36m", "train", rng)
    db["pose"][:], db["shape"][:] = 0.0, 0.0
    out = convert("tcmr", "h36m", "train", write_db(db, tmp_path / "nosmpl.pt"), tmp_path / "a")
    assert not any(c["meta"]["supervision"]["smpl"] or "pose" in c for c in read_back(out))
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["clips_without_smpl"] == len(LENGTHS)

    db = make_db("h36m", "train", rng)
    out = convert("tcmr", "h36m", "train", write_db(db, tmp_path / "smpl.pt"), tmp_path / "b",
                  use_smpl=False)
    assert not any(c["meta"]["supervision"]["smpl"] for c in read_back(out))


def test_zero_bboxes_and_shifted_bboxes_are_reported(tmp_path):
    """The 3DPW/H36M time_pt1 shift leaves zero boxes and boxes of other frames in the files."""
    rng = np.random.default_rng(4)
    db = make_db("3dpw", "test", rng)
    db["joints2D"][..., 2] = 1.0
    db["bbox"][:2] = 0.0
    db["bbox"][10:13, 0] += 1000.0
    out = convert("tcmr", "3dpw", "test", write_db(db, tmp_path / "db.pt"), tmp_path / "out")
    kp2d = _concat(read_back(out), "kp2d")
    assert not kp2d[:2].any()
    report = json.loads((out / REPORT_NAME).read_text())
    assert (report["frames_without_bbox"], report["frames_keypoints_outside_crop"]) == (2, 3)


def test_repeated_vid_name_runs_become_separate_videos(tmp_path):
    rng = np.random.default_rng(5)
    db = _common_db(rng, "track_", 49, lengths=(4, 3, 2))
    db["vid_name"] = np.array(["a"] * 4 + ["b"] * 3 + ["a"] * 2)
    out = convert("vibe", "posetrack", "train", write_db(db, tmp_path / "db.pt"), tmp_path / "o")
    assert [(c["meta"]["video"], len(c["valid"])) for c in read_back(out)] == \
        [("a", 4), ("b", 3), ("a~2", 2)]


def test_frame_ids_fall_back_to_positions_and_say_so(tmp_path):
    rng = np.random.default_rng(6)
    db = make_db("pennaction", "train", rng)
    db["img_name"] = np.array(["no_digits.jpg"] * sum(LENGTHS))
    out = convert("vibe", "pennaction", "train", write_db(db, tmp_path / "db.pt"), tmp_path / "o")
    np.testing.assert_array_equal(_concat(read_back(out), "frame_id"),
                                  np.concatenate([np.arange(n) for n in LENGTHS]))
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["videos_with_frame_id_from_position"] == ["0001_0_0", "0001_1_0", "0001_2_0"]


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = write_db({"vid_name": np.array(["a"]), "payload": _RunsShell(marker)}, tmp_path / "x.pt")
    with pytest.raises(UnsafePickleError, match=r"refusing to load global (posix|os)\.system"):
        load_joblib_pickle(path)
    with pytest.raises(ConversionError, match="refusing"):
        convert("vibe", "posetrack", "train", path, tmp_path / "out")
    assert not marker.exists()


def test_joblib_reader_matches_joblib_for_every_protocol(tmp_path):
    data = {"c": np.arange(12.0).reshape(3, 4), "f": np.asfortranarray(np.ones((3, 2), np.int16)),
            "s": np.array(["ab", "c"]), "o": np.array(["x", b"y", 3], dtype=object),
            "empty": np.zeros((0, 3), np.float16), "scalar": np.float64(2.5), "list": [1, ("a",)]}
    for protocol in (2, 3, 4, 5):
        path = write_db(data, tmp_path / f"p{protocol}.pt") if protocol == 4 else tmp_path / "p.pt"
        joblib.dump(data, path, protocol=protocol)
        loaded = load_joblib_pickle(path)
        assert loaded.keys() == data.keys()
        for key, value in data.items():
            if isinstance(value, np.ndarray):
                assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape
                np.testing.assert_array_equal(loaded[key], value)
            else:
                assert loaded[key] == value


def test_compressed_and_truncated_files_get_clear_errors(tmp_path):
    data = {"a": np.arange(1000.0)}
    joblib.dump(data, tmp_path / "z.pt", compress=3)
    with pytest.raises(JoblibFormatError, match="compressed"):
        load_joblib_pickle(tmp_path / "z.pt")
    raw = (write_db(data, tmp_path / "t.pt")).read_bytes()
    (tmp_path / "t.pt").write_bytes(raw[:-100])
    with pytest.raises(JoblibFormatError, match="truncated"):
        load_joblib_pickle(tmp_path / "t.pt")


def test_bad_arguments_and_files_name_the_problem(tmp_path):
    rng = np.random.default_rng(7)
    with pytest.raises(ConversionError, match="TEST set"):
        convert("tcmr", "mpii3d", "val", tmp_path / "x.pt", tmp_path / "o")
    with pytest.raises(ConversionError, match="no h36m db file"):
        convert("vibe", "h36m", "train", tmp_path / "x.pt", tmp_path / "o")
    amass = write_db(make_db("amass", "train", rng), tmp_path / "amass.pt")
    with pytest.raises(ConversionError, match="fps"):
        convert("tcmr", "amass", "train", amass, tmp_path / "o")
    assert read_manifest(convert("tcmr", "amass", "train", amass, tmp_path / "o", fps=120)).frames \
        == sum(LENGTHS)
    db = make_db("3dpw", "test", rng)
    db["joints3D"] = db["joints3D"][:, :12]
    with pytest.raises(ConversionError, match=r"'joints3D': expected shape \(60, 14, 3\)"):
        convert("tcmr", "3dpw", "test", write_db(db, tmp_path / "bad.pt"), tmp_path / "o2")
    del db["joints3D"]
    with pytest.raises(ConversionError, match=r"missing key\(s\) \['joints3D'\]"):
        convert("tcmr", "3dpw", "test", write_db(db, tmp_path / "bad.pt"), tmp_path / "o3")
