"""ShardDataModule: exact-once evaluation and equal training epochs on simulated ranks."""

import itertools
import random
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from data_helpers import FEATURE_DIM, write_split
from torch.utils.data import DataLoader

from datamodules.datamodule import ShardDataModule
from datamodules.loading import interleave_windows, rank_batch_split
from datamodules.schema import ClipError, DataError, ShardError, iterate_clips, read_manifest

UNEVEN_LENGTHS = [41, 3, 17, 1, 29, 8, 8, 60, 2, 13, 5]  # 11 sequences, 4 shards of <= 3


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("val")
    write_split(directory, UNEVEN_LENGTHS, per_shard=3, split="val")
    return directory


@pytest.fixture(scope="module")
def train_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_split(root / "3d", [20, 24, 18, 30, 22], per_shard=2)
    write_split(root / "2d", [19, 25, 16], per_shard=1, kp3d="", smpl=False, dataset="insta")
    return root


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_eval_covers_every_frame_exactly_once_with_equal_batch_counts(eval_dir, world_size,
                                                                      num_workers):
    data = ShardDataModule(val_datasets={"toy": str(eval_dir)}, num_workers=num_workers)
    frames, counts = Counter(), []
    for rank in range(world_size):
        (loader,) = data.eval_loaders_for(data.val_datasets, rank, world_size)
        batches = list(loader)
        counts.append(len(batches))
        assert len(batches) == len(loader)
        for item in batches:
            assert item["dataset"] == "toy" and item["features"].dtype == torch.float32
            assert item["features"].shape[1] == FEATURE_DIM
            if item["is_padding"]:
                assert not item["valid"].any()
            else:
                frames.update((item["sequence"], int(f)) for f in item["frame_id"])
    manifest = read_manifest(eval_dir)
    expected = Counter((c.key, f) for s in manifest.shards for c in s.clips
                       for f in range(c.frames))
    assert frames == expected  # same frames, each once
    assert len(set(counts)) == 1


def test_eval_ranks_are_balanced_by_frames(eval_dir):
    data = ShardDataModule(val_datasets={"toy": str(eval_dir)}, num_workers=0)
    loads = [sum(len(item["valid"]) for item in data.eval_loaders_for(data.val_datasets, r, 2)[0]
                 if not item["is_padding"]) for r in range(2)]
    assert sum(loads) == sum(UNEVEN_LENGTHS) and abs(loads[0] - loads[1]) <= 2


def test_eval_item_keeps_targets_in_the_datasets_joint_set(eval_dir):
    data = ShardDataModule(val_datasets={"toy": str(eval_dir)}, num_workers=0)
    item = next(iter(data.eval_loaders_for(data.val_datasets, 0, 1)[0]))
    n = len(item["valid"])
    assert item["kp3d"].shape == (n, 14, 3) and item["joints3d"] == "common14"
    assert item["pose"].shape == (n, 72) and item["frame_id"].dtype == torch.int64


ACCELERATORS = ["cpu", *(["gpu"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("accelerator", ACCELERATORS)
@pytest.mark.parametrize("pin_memory", [None, True, False])
def test_every_loader_pins_memory_when_asked_or_when_training_on_a_gpu(eval_dir, train_dirs,
                                                                       accelerator, pin_memory):
    from lightning.pytorch import Trainer

    data = ShardDataModule(train_datasets=[{"path": str(train_dirs / "3d"), "group": "3d"}],
                           val_datasets={"toy": str(eval_dir)}, motion_dataset=str(train_dirs / "3d"),
                           batch_size=4, ratio_2d=0.0, num_workers=0, pin_memory=pin_memory)
    data.trainer = Trainer(accelerator=accelerator, devices=1, logger=False)
    expected = pin_memory if pin_memory is not None else accelerator == "gpu"
    loaders = [data.train_dataloader().loader, *data.val_dataloader(),
               data.motion_dataloader().loader]
    assert [loader.pin_memory for loader in loaders] == [expected] * 3


def test_rank_batch_split_keeps_the_global_19_13_split():
    assert rank_batch_split(32, 0.6, 1, 0, ["2d", "3d"]) == {"2d": 19, "3d": 13}
    for world in (2, 4, 8):
        splits = [rank_batch_split(32, 0.6, world, r, ["2d", "3d"]) for r in range(world)]
        assert sum(s["2d"] for s in splits) == 19 and sum(s["3d"] for s in splits) == 13
        assert {s["2d"] + s["3d"] for s in splits} == {32 // world}
    assert rank_batch_split(32, 0.6, 2, 1, ["3d"]) == {"2d": 0, "3d": 16}
    with pytest.raises(ValueError, match="not divisible by the world size 3"):
        rank_batch_split(32, 0.6, 3, 0, ["3d"])


def train_module(train_dirs, **options) -> ShardDataModule:
    defaults = {"seq_len": 16, "stride": 4, "batch_size": 12, "ratio_2d": 0.5,
                "steps_per_epoch": 5, "num_workers": 0, "clip_pool": 4}
    return ShardDataModule(
        train_datasets=[{"path": str(train_dirs / "3d"), "weight": 1.0, "group": "3d"},
                        {"path": str(train_dirs / "2d"), "weight": 1.0, "group": "2d"}],
        **{**defaults, **options})


@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 0), (2, 2), (3, 0)])
def test_train_epochs_have_the_same_batch_count_on_every_rank(train_dirs, world_size, num_workers):
    data = train_module(train_dirs, num_workers=num_workers)
    for rank in range(world_size):
        loader = data.train_loader_for(rank, world_size)
        for _ in range(2):
            batches = list(loader)
            assert len(batches) == len(loader) == 5
        assert loader.epoch == 2 and loader.batches_consumed == 10
        assert all(b["features"].shape[0] == 12 // world_size for b in batches)


def test_train_batch_layout(train_dirs):
    batch = next(iter(train_module(train_dirs).train_loader_for(0, 1)))
    b, t = 12, 16
    shapes = {"features": (b, t, FEATURE_DIM), "kp2d": (b, t, 49, 3), "kp3d": (b, t, 49, 3),
              "pose": (b, t, 72), "shape": (b, t, 10), "w_kp2d": (b, t), "w_kp3d": (b, t),
              "w_smpl": (b, t), "valid": (b, t), "is_2d_only": (b,)}
    assert {k: tuple(v.shape) for k, v in batch.items()} == shapes
    assert batch["features"].dtype == torch.float32 and batch["valid"].dtype == torch.bool
    assert batch["is_2d_only"].tolist() == [True] * 6 + [False] * 6
    two_d, three_d = batch["is_2d_only"], ~batch["is_2d_only"]
    assert batch["w_kp3d"][two_d].sum() == 0 and batch["kp3d"][two_d].abs().sum() == 0
    assert torch.equal(batch["w_kp3d"][three_d], batch["valid"][three_d].float())
    # common14 joints land on spin49's common slots 25..38; the others stay zero
    assert batch["kp3d"][three_d][..., 25:39, :].abs().sum() > 0
    assert batch["kp3d"][three_d][..., :25, :].abs().sum() == 0


def test_train_windows_are_contiguous_frames_of_one_clip(train_dirs):
    clips = [c["features"].astype(np.float32) for c in iterate_clips(train_dirs / "3d")]
    batch = next(iter(train_module(train_dirs, ratio_2d=0.0).train_loader_for(0, 1)))
    for window in batch["features"].numpy():
        sources = [(i, s) for i, features in enumerate(clips)
                   for s in range(len(features) - 15) if np.array_equal(window, features[s:s + 16])]
        assert len(sources) == 1


def test_short_training_clip_is_a_counted_skip_by_default_or_an_error(tmp_path, caplog):
    write_split(tmp_path / "d", [20, 5, 20], per_shard=3)
    options = {"train_datasets": [{"path": str(tmp_path / "d")}], "seq_len": 16,
               "batch_size": 2, "steps_per_epoch": 3, "num_workers": 0, "clip_pool": 1}
    with pytest.raises(ClipError, match=r"shard train-000000.tar, sample 'video1__000000': "
                                        r"expected at least seq_len=16 frames .* got 5"):
        list(ShardDataModule(**options, skip_short_clips=False).train_loader_for(0, 1))
    data = ShardDataModule(**options)
    with caplog.at_level("WARNING"):
        loader = data.train_loader_for(0, 1)
    assert f"{tmp_path / 'd'}: 1 of 3 clips (5 of 45 frames) shorter than seq_len=16" in caplog.text
    assert len(list(loader)) == 3 and loader.skipped_clips >= 1
    state = data.state_dict()
    assert state["epoch"] == 1 and state["batches_consumed"] == 3 and state["samples_consumed"] == 6
    assert state["skipped_clips"] == loader.skipped_clips


def test_ignore_smpl_switches_off_the_smpl_weight_of_the_named_datasets_only(tmp_path):
    write_split(tmp_path / "a", [20, 20], dataset="h36m")
    write_split(tmp_path / "b", [20, 20], dataset="3dpw")
    options = {"train_datasets": [{"path": str(tmp_path / "a"), "group": "3d"},
                                  {"path": str(tmp_path / "b"), "group": "2d"}],
               "seq_len": 16, "batch_size": 8, "ratio_2d": 0.5, "steps_per_epoch": 1,
               "num_workers": 0}

    def smpl_weight(**extra) -> tuple[float, float]:  # (h36m windows, 3dpw windows)
        batch = next(iter(ShardDataModule(**options, **extra).train_loader_for(0, 1)))
        from_3dpw = batch["is_2d_only"]
        return float(batch["w_smpl"][~from_3dpw].sum()), float(batch["w_smpl"][from_3dpw].sum())

    h36m, pw3d = smpl_weight()
    assert h36m > 0 and pw3d > 0
    h36m, pw3d = smpl_weight(ignore_smpl=["h36m"])
    assert h36m == 0 and pw3d > 0
    with pytest.raises(DataError, match=r"ignore_smpl names \['h3.6m'\], which no training "
                                        r"split holds \(their datasets: \['3dpw', 'h36m'\]\)"):
        ShardDataModule(**options, ignore_smpl=["h3.6m"]).train_loader_for(0, 1)


def test_state_dict_restores_the_epoch_and_so_the_stream(train_dirs):
    first = train_module(train_dirs)
    loader = first.train_loader_for(0, 1)
    list(loader)
    second_epoch = [b["features"] for b in loader]
    resumed = train_module(train_dirs)
    resumed.load_state_dict({**first.state_dict(), "epoch": 1})
    replay = [b["features"] for b in resumed.train_loader_for(0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(second_epoch, replay))
    fresh = [b["features"] for b in train_module(train_dirs).train_loader_for(0, 1)]
    assert not all(torch.equal(a, b) for a, b in zip(second_epoch, fresh))


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_persistent_forkserver_workers_yield_the_stream_a_fork_per_epoch_yields(train_dirs):
    """Workers are not forked from the training process and live across epochs, yet every
    (seed, rank, worker, epoch) yields the windows that a fresh fork per epoch (the old way)
    yields, and a loader resumed at an epoch replays that epoch."""
    data = train_module(train_dirs, num_workers=2)
    loader = data.train_loader_for(1, 2)
    assert loader.loader.multiprocessing_context.get_start_method() == "forkserver"
    assert loader.loader.persistent_workers
    epochs = [list(loader) for _ in range(3)]
    stream = data.train_loader_for(1, 2).dataset
    for epoch, got in enumerate(epochs):
        stream.epoch = epoch
        forked = DataLoader(stream, batch_size=None, num_workers=2, multiprocessing_context="fork")
        assert_same_batches(got, [{k: v for k, v in b.items() if k != "skipped_clips"}
                                  for b in forked])
    assert not torch.equal(epochs[0][0]["features"], epochs[1][0]["features"])
    resumed = data.train_loader_for(1, 2)
    resumed.epoch = 2
    assert_same_batches(list(resumed), epochs[2])


def test_lightning_fit_runs_fixed_epochs_and_every_val_sequence(train_dirs, eval_dir):
    import lightning as L

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer, self.sequences = torch.nn.Linear(FEATURE_DIM, 1), []

        def training_step(self, batch, batch_idx):
            return self.layer(batch["features"]).mean()

        def validation_step(self, batch, batch_idx):
            self.sequences.append(batch["sequence"])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = train_module(train_dirs, steps_per_epoch=3)
    data.val_datasets = {"toy": str(eval_dir)}
    probe = Probe()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0)
    trainer.fit(probe, data)
    assert trainer.global_step == 6 and data.state_dict()["epoch"] == 2
    assert Counter(probe.sequences) == Counter({f"video{i}__000000": 2
                                                for i in range(len(UNEVEN_LENGTHS))})


def test_interleaving_gives_each_window_of_a_clip_once_and_mixes_the_pool():
    clips = (({"clip": index}, list(range(10))) for index in itertools.count())
    windows = list(itertools.islice(interleave_windows(clips, 8, random.Random(0)), 800))
    drawn = [(targets["clip"], start) for targets, start in windows]
    assert len(set(drawn)) == len(drawn)  # no window twice
    per_clip = Counter(clip for clip, _ in drawn)
    assert max(per_clip.values()) == 10 and sum(n == 10 for n in per_clip.values()) >= 60
    spread = [len({clip for clip, _ in drawn[i:i + 8]}) for i in range(0, 800, 8)]
    assert np.mean(spread) > 4  # a block of 8 windows comes from several clips

    one_at_a_time = itertools.islice(interleave_windows(
        (({"clip": index}, list(range(10))) for index in itertools.count()), 1, random.Random(0)), 30)
    assert [targets["clip"] for targets, _ in one_at_a_time] == [i // 10 for i in range(30)]


# ----------------------------------------------------------------------------- stages, checksums


def test_each_stage_checks_and_measures_only_the_splits_it_reads(train_dirs, eval_dir, tmp_path):
    write_split(tmp_path / "mine", [12], split="predict", feature_dim=2048)
    data = ShardDataModule(
        train_datasets=[{"path": str(train_dirs / "3d")}], val_datasets={"toy": str(eval_dir)},
        test_datasets={"gone": str(tmp_path / "gone")}, predict_datasets={"mine": str(tmp_path / "mine")},
        motion_dataset=str(train_dirs / "3d"))
    assert data.feature_dim_for("fit") == data.feature_dim_for("validate") == FEATURE_DIM
    assert data.feature_dim_for("predict") == 2048  # other splits' sizes do not matter
    with pytest.raises(DataError) as missing:
        data.feature_dim_for("test")
    assert f"data.test_datasets.gone: {tmp_path / 'gone'}" in str(missing.value)
    assert "data.train_datasets" not in str(missing.value)
    assert list(data.configured_paths("fit")) == [
        "data.train_datasets[0]", "data.val_datasets.toy", "data.motion_dataset"]
    assert data.stage_splits("fit") == [str(train_dirs / "3d"), str(eval_dir)]


def flipped_copy(source, target):
    """A copy of a split whose first shard has one byte changed (still a readable tar)."""
    shutil.copytree(source, target)
    shard = min(target.glob("*.tar"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    return shard


def test_test_shards_are_verified_against_their_checksums_before_reading(eval_dir, tmp_path):
    shard = flipped_copy(eval_dir, tmp_path / "flipped")
    split = {"toy": str(tmp_path / "flipped")}
    with pytest.raises(ShardError, match=rf"shard {shard}: sha256 expected [0-9a-f]{{64}} \(as "
                                         r"manifest.json lists\), got [0-9a-f]{64}"):
        ShardDataModule(test_datasets=split, num_workers=0).test_dataloader()
    assert ShardDataModule(test_datasets=split, num_workers=0,
                           verify_checksums=[]).test_dataloader()  # asked not to: read as is
    assert ShardDataModule(val_datasets=split, num_workers=0).val_dataloader()  # default: test only
    with pytest.raises(ShardError, match="sha256 expected"):
        ShardDataModule(val_datasets=split, num_workers=0, verify_checksums=["val"]).val_dataloader()
    with pytest.raises(DataError, match="verify_checksums"):
        ShardDataModule(verify_checksums=["tset"])
    ShardDataModule(test_datasets={"toy": str(eval_dir)}, num_workers=0).test_dataloader()
