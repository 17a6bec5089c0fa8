"""Data faults on real shards: truncated tars, edited manifests, datasets without a window.

A shard cut anywhere (inside a tar header, inside a member's data, inside or before the
end-of-archive marker) must be refused by ``data index`` and ``data check`` and by every reader,
naming the shard and where it is cut; never indexed or read with fewer samples. A manifest whose
counts were edited must be refused by ``data check``.
"""

import json
import os
import shutil
import signal
import tarfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from data_helpers import write_split
from test_data_commands import run_data

from datamodules.datamodule import ShardDataModule
from datamodules.schema import (
    ClipError,
    DataError,
    ShardError,
    build_manifest,
    iterate_clips,
    read_manifest,
)
from datamodules.schema.archive import END_MARKER, padded_end

SHARD = "train-000000.tar"
LENGTHS = [5, 7, 4]  # one shard of three clips


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    """A split directory with one complete shard of three clips and its manifest."""
    directory = tmp_path_factory.mktemp("split")
    write_split(directory, LENGTHS, per_shard=len(LENGTHS))
    return directory


def tar_members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


def cut_points(path: Path) -> dict[str, tuple[int, str]]:
    """Named cut offsets of every class in a real shard -> (offset, expected words)."""
    members = tar_members(path)
    middle = members[len(members) // 2]  # a member of the second clip
    last_end = padded_end(members[-1])
    assert middle.size % 512, "the padding case needs a member whose data is not whole blocks"
    return {
        "first header": (100, "tar header at byte 0"),
        "pax header of a middle member": (middle.offset + 100, f"tar header at byte {middle.offset}"),
        "pax record data": (middle.offset + 600, f"tar header at byte {middle.offset}"),
        "real header after pax": (middle.offset_data - 100, f"tar header at byte {middle.offset}"),
        "member data": (middle.offset_data + middle.size // 2,
                        f"inside the data of member {middle.name!r}"),
        "member padding": (middle.offset_data + middle.size + 1,
                           f"inside the data of member {middle.name!r}"),
        "end marker missing": (last_end, "end-of-archive marker"),
        "end marker half": (last_end + 512, "inside the end-of-archive marker"),
        "end marker nearly whole": (last_end + END_MARKER - 1, "inside the end-of-archive marker"),
    }


def copy_split(split: Path, target: Path, *, with_manifest: bool) -> Path:
    shutil.copytree(split, target)
    if not with_manifest:
        (target / "manifest.json").unlink()
    return target


CUT_CASES = ["first header", "pax header of a middle member", "pax record data",
             "real header after pax", "member data", "member padding", "end marker missing",
             "end marker half", "end marker nearly whole"]


@pytest.mark.parametrize("case", CUT_CASES)
def test_index_refuses_a_shard_cut_at_every_offset_class(split, tmp_path, case, capsys):
    offset, words = cut_points(split / SHARD)[case]
    work = copy_split(split, tmp_path / "cut", with_manifest=False)
    (work / SHARD).write_bytes((split / SHARD).read_bytes()[:offset])
    with pytest.raises(ShardError) as refused:
        build_manifest(work)
    message = str(refused.value)
    assert f"shard {work / SHARD}: truncated" in message and words in message
    assert "str-lightning data index" in message and "missing member" not in message
    assert run_data("index", str(work)) == 2
    assert "truncated" in capsys.readouterr().err
    assert not (work / "manifest.json").exists()


@pytest.mark.parametrize("case", CUT_CASES)
def test_check_and_readers_refuse_a_shard_cut_after_indexing(split, tmp_path, case, capsys):
    offset, _ = cut_points(split / SHARD)[case]
    work = copy_split(split, tmp_path / "cut", with_manifest=True)
    (work / SHARD).write_bytes((split / SHARD).read_bytes()[:offset])
    assert run_data("check", str(work)) == 1
    err = capsys.readouterr().err
    assert f"{SHARD}: truncated" in err and f"{SHARD}: sha256 expected" in err
    with pytest.raises(ShardError, match="truncated"):
        list(iterate_clips(work, validate=False))
    data = ShardDataModule(train_datasets=[{"path": str(work)}], seq_len=4, batch_size=2,
                           steps_per_epoch=2, num_workers=0, clip_pool=1)
    with pytest.raises(ShardError, match="truncated"):
        list(data.train_loader_for(0, 1))


@pytest.mark.slow  # about 2,900 cuts, each indexed: ~30-60 s
def test_no_cut_anywhere_shrinks_the_dataset(split, tmp_path):
    """Every cut offset (a prime stride plus each block boundary and its neighbours): index
    refuses the shard, or the cut only removed trailing padding and every sample is there."""
    data = (split / SHARD).read_bytes()
    offsets = set(range(0, len(data), 29))
    offsets |= {b + d for b in range(0, len(data), 512) for d in (-1, 0, 1) if 0 <= b + d < len(data)}
    complete = read_manifest(split).shards[0].clips
    work = tmp_path / "cut"
    work.mkdir()
    outcomes = {"refused": 0, "complete": 0}
    for offset in sorted(offsets):
        (work / "manifest.json").unlink(missing_ok=True)
        (work / SHARD).write_bytes(data[:offset])
        try:
            manifest = build_manifest(work)
        except ClipError as err:
            pytest.fail(f"cut at {offset}: blamed a clip instead of the archive: {err}")
        except ShardError:
            outcomes["refused"] += 1
            continue
        assert manifest.shards[0].clips == complete, f"cut at {offset} shrank the dataset"
        assert offset >= padded_end(tar_members(split / SHARD)[-1]) + END_MARKER
        outcomes["complete"] += 1
    assert outcomes["refused"] > 2000 and outcomes["complete"] > 0


def test_index_refuses_a_corrupt_header_inside_the_archive(split, tmp_path):
    work = copy_split(split, tmp_path / "bad", with_manifest=False)
    middle = tar_members(split / SHARD)[len(LENGTHS) * 3]
    data = bytearray((split / SHARD).read_bytes())
    data[middle.offset + 148:middle.offset + 156] = b"garbage!"  # the header checksum field
    (work / SHARD).write_bytes(bytes(data))
    with pytest.raises(ShardError, match=f"corrupt tar header at byte {middle.offset}"):
        build_manifest(work)


# ----------------------------------------------------------------------------- edited manifests


def edit_first_clip_frames(manifest: dict) -> str:
    shard = manifest["shards"][0]
    shard["clips"][0][1] += 3  # and every total, so the manifest still adds up
    shard["frames"] += 3
    manifest["frames"] += 3
    return "frames 19 (counted 16)"


def edit_drop_last_clip(manifest: dict) -> str:
    shard = manifest["shards"][0]
    dropped = shard["clips"].pop()
    shard["samples"] -= 1
    shard["frames"] -= dropped[1]
    manifest["samples"] -= 1
    manifest["frames"] -= dropped[1]
    return "samples 2 (counted 3)"


def edit_offset(manifest: dict) -> str:
    manifest["shards"][0]["clips"][1][2] += 512
    return "clip ClipEntry(key='video1__000000'"


def edit_nbytes(manifest: dict) -> str:
    manifest["shards"][0]["clips"][2][3] -= 512
    return "clip ClipEntry(key='video2__000000'"


def edit_shard_samples(manifest: dict) -> str:
    manifest["shards"][0]["samples"] += 1
    return f"shard {SHARD}: samples is 4, but what it lists adds up to 3"


def edit_total_frames(manifest: dict) -> str:
    manifest["frames"] -= 1
    return "frames is 15, but what it lists adds up to 16"


EDITS = [edit_first_clip_frames, edit_drop_last_clip, edit_offset, edit_nbytes,
         edit_shard_samples, edit_total_frames]


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__ for e in EDITS])
def test_check_refuses_a_manifest_whose_counts_were_edited(split, tmp_path, edit, capsys):
    work = copy_split(split, tmp_path / "edited", with_manifest=True)
    path = work / "manifest.json"
    manifest = json.loads(path.read_text())
    expected = edit(manifest)
    path.write_text(json.dumps(manifest))
    # Totals that do not add up make the manifest unreadable: an error (status 2); entries that
    # disagree with the shards are problems the check finds (status 1).
    unreadable = edit in (edit_shard_samples, edit_total_frames)
    assert run_data("check", str(work)) == (2 if unreadable else 1)
    err = capsys.readouterr().err
    assert expected in err and "str-lightning data index" in err


def test_training_refuses_frames_the_manifest_lists_wrongly(split, tmp_path):
    work = copy_split(split, tmp_path / "edited", with_manifest=True)
    path = work / "manifest.json"
    manifest = json.loads(path.read_text())
    edit_first_clip_frames(manifest)
    path.write_text(json.dumps(manifest))
    data = ShardDataModule(train_datasets=[{"path": str(work)}], seq_len=4, batch_size=2,
                           steps_per_epoch=3, num_workers=0, clip_pool=1)
    with pytest.raises(ShardError, match="expected 8 frames as the manifest lists, got 5"):
        list(data.train_loader_for(0, 1))


# ----------------------------------------------------------------------------- no window at all


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: SIGALRM interrupts a stuck loop in the main thread."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skip_short_clips_without_a_long_enough_clip_fails_fast(tmp_path, num_workers):
    write_split(tmp_path / "short", [5, 9, 7], per_shard=2)
    write_split(tmp_path / "long", [30, 30], per_shard=1)
    data = ShardDataModule(train_datasets=[{"path": str(tmp_path / "long")},
                                           {"path": str(tmp_path / "short")}],
                           seq_len=16, batch_size=2, steps_per_epoch=2, skip_short_clips=True,
                           num_workers=num_workers, clip_pool=1)
    with deadline(60), pytest.raises(DataError) as refused:
        data.train_loader_for(0, 1)
    message = str(refused.value)
    assert "seq_len=16" in message and f"{tmp_path / 'short'} (toy/train, longest clip 9 " \
        "frames)" in message and str(tmp_path / "long") + " " not in message


def test_a_rank_whose_shards_hold_no_window_reads_the_shards_that_do(tmp_path):
    """Shards are split over (rank, worker) slots; a slot whose part holds only short clips
    takes its windows from the shards that have some instead of waiting forever."""
    write_split(tmp_path / "d", [30, 5, 30, 6], per_shard=1)
    data = ShardDataModule(train_datasets=[{"path": str(tmp_path / "d")}], seq_len=16,
                           batch_size=4, steps_per_epoch=3, skip_short_clips=True,
                           num_workers=0, clip_pool=1)
    with deadline(60):
        batches = list(data.train_loader_for(1, 2))  # rank 1 of 2: shards 1 and 3 (short)
    assert len(batches) == 3 and all(b["features"].shape == (2, 16, 6) for b in batches)


# ----------------------------------------------------------------------------- preemption signal


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc: workers, forkserver, resource tracker)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def test_workers_survive_the_preemption_signal_sent_to_every_process(tmp_path):
    """SLURM signals every process of the step: the training process acts on it, its loader's
    workers and their forkserver must not die of it (the next epoch still runs)."""
    write_split(tmp_path / "d", [30, 30, 30, 30], per_shard=1)
    data = ShardDataModule(train_datasets=[{"path": str(tmp_path / "d")}], seq_len=8,
                           batch_size=2, steps_per_epoch=4, num_workers=2, clip_pool=1)
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        loader = data.train_loader_for(0, 1)
        with deadline(120):
            assert len(list(loader)) == 4
            helpers = descendants(os.getpid())
            assert len(helpers) >= 3  # two workers and the forkserver
            for pid in [os.getpid(), *helpers]:
                os.kill(pid, signal.SIGUSR1)
            time.sleep(1.0)
            assert received and all(Path(f"/proc/{pid}").exists() for pid in helpers)
            assert len(list(loader)) == 4
    finally:
        signal.signal(signal.SIGUSR1, previous)
