"""Clip schema: writer -> real WebDataset tars -> reader, manifest and its errors."""

import json
import tarfile

import numpy as np
import pytest
from data_helpers import FEATURE_DIM, make_clip, write_split

from datamodules.schema import (
    ClipError,
    ShardError,
    ShardWriter,
    build_manifest,
    iterate_clips,
    read_clip,
    read_manifest,
)


@pytest.mark.parametrize("feature_dtype", ["float16", "float32"])
def test_round_trip_gives_identical_arrays(tmp_path, feature_dtype):
    clips = [make_clip("a/b.c", 5, feature_dtype=feature_dtype, bbox=True),
             make_clip("b", 3, start=7, feature_dtype=feature_dtype, kp3d="", smpl=False, seed=1),
             make_clip("c", 9, feature_dtype=feature_dtype, seed=2)]
    with ShardWriter(tmp_path, dataset="toy", split="train", max_samples_per_shard=2) as writer:
        for clip in clips:
            writer.write(clip)
    read = list(iterate_clips(tmp_path))
    assert len(read) == len(clips)
    for written, got in zip(clips, read):
        assert got["meta"] == written["meta"]
        assert set(got) - {"__key__", "__shard__"} == set(written)
        for name, array in written.items():
            if name != "meta":
                assert got[name].dtype == array.dtype and np.array_equal(got[name], array), name
    manifest = read_manifest(tmp_path)
    assert [s.name for s in manifest.shards] == ["train-000000.tar", "train-000001.tar"]
    assert (manifest.samples, manifest.frames) == (3, 17)
    assert (manifest.feature_dim, manifest.feature_dtype) == (FEATURE_DIM, feature_dtype)
    assert manifest.joints3d == "common14"


def test_read_clip_by_offset_matches_streaming_read(tmp_path):
    write_split(tmp_path, [4, 5, 6, 7, 8], per_shard=2)
    manifest = read_manifest(tmp_path)
    streamed = {c["__key__"]: c for c in iterate_clips(tmp_path)}
    for shard in manifest.shards:
        for entry in shard.clips:
            clip = read_clip(manifest, shard, entry)
            assert len(clip["valid"]) == entry.frames
            assert np.array_equal(clip["features"], streamed[entry.key]["features"])


def test_index_of_written_shards_reproduces_the_writers_manifest(tmp_path):
    write_split(tmp_path, [3, 4, 5], per_shard=2)
    written = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").unlink()
    build_manifest(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text()) == written


def test_index_accepts_shards_written_by_another_tool(tmp_path):
    import io

    clip = make_clip("x", 4)
    with tarfile.open(tmp_path / "other.tar", "w") as tar:
        for name, value in clip.items():
            if name == "meta":
                data = json.dumps(value).encode()
                member = "x0.meta.json"
            else:
                buffer = io.BytesIO()
                np.save(buffer, value)
                data, member = buffer.getvalue(), f"x0.{name}.npy"
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    manifest = build_manifest(tmp_path)
    assert (manifest.samples, manifest.frames, manifest.feature_dim) == (1, 4, FEATURE_DIM)
    (got,) = iterate_clips(tmp_path)
    assert np.array_equal(got["kp3d"], clip["kp3d"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("valid"), "missing member(s) ['valid']"),
        (lambda c: c.update(features=c["features"][:, :4]), "expected shape (L=5, D=6)"),
        (lambda c: c.update(kp2d=c["kp2d"][:3]), "member 'kp2d': expected shape (L=5, 49, 3)"),
        (lambda c: c.update(pose=c["pose"].astype(np.float64)), "expected dtype float32, got float64"),
        (lambda c: c["features"].__setitem__((1, 2), np.nan), "expected finite values, got 1"),
        (lambda c: c.update(extra=np.zeros(5)), "unexpected member(s) ['extra']"),
        (lambda c: c["meta"].update(joints3d="nope"), "meta.joints3d"),
        (lambda c: c["meta"]["supervision"].update(smpl="yes"), "meta.supervision"),
        (lambda c: c.update(valid=np.full(5, 3, np.uint8)), "values in {0, 1}"),
    ],
)
def test_writer_rejects_bad_clips_naming_clip_member_expected_actual(tmp_path, change, message):
    clip = make_clip("walk", 5)
    change(clip)
    with ShardWriter(tmp_path, dataset="toy", split="train") as writer:
        writer.write(make_clip("first", 5))  # fixes the split's feature dim D=6
        with pytest.raises(ClipError) as err:
            writer.write(clip)
    assert message in str(err.value) and "video='walk'" in str(err.value)


def test_writer_rejects_mixed_feature_dims_and_datasets(tmp_path):
    other_dim = make_clip("b", 4)
    other_dim["features"] = np.zeros((4, 3), np.float32)
    with ShardWriter(tmp_path, dataset="toy", split="train") as writer:
        writer.write(make_clip("a", 4))
        with pytest.raises(ClipError, match=r"features.: expected shape \(L=4, D=6\), got \(4, 3\)"):
            writer.write(other_dim)
        with pytest.raises(ClipError, match="dataset: expected 'toy'"):
            writer.write(make_clip("c", 4, dataset="other"))


def test_writer_refuses_to_overwrite_unless_asked_and_aborts_cleanly(tmp_path):
    write_split(tmp_path, [3])
    with pytest.raises(FileExistsError, match="already holds"):
        ShardWriter(tmp_path, dataset="toy", split="train")
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, dataset="toy", split="train",
                                                  overwrite=True) as writer:
        writer.write(make_clip("a", 3))
        raise RuntimeError("producer failed")
    assert list(tmp_path.iterdir()) == []


def test_truncated_shard_is_an_error_naming_the_shard(tmp_path):
    write_split(tmp_path, [20, 20, 20], per_shard=3)
    shard = tmp_path / "train-000000.tar"
    shard.write_bytes(shard.read_bytes()[:3000])
    with pytest.raises(ShardError, match=r"train-000000.tar: truncated: expected at least \d+ bytes"):
        list(iterate_clips(tmp_path))


def test_wrong_feature_dim_on_read_names_shard_sample_and_member(tmp_path):
    write_split(tmp_path, [4, 4])
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["feature_dim"] = 8
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ClipError, match=r"shard train-000000.tar, sample 'video0__000000': "
                                        r"member 'features': expected shape \(L=4, D=8\), got \(4, 6\)"):
        list(iterate_clips(tmp_path))
