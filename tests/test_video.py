"""From a video to the mesh: boxes, SPIN crops, ResNet-50 weights, features shards, the camera
conversion and the demo overlay, on small videos the tests write with imageio (no real weights:
the ResNet-50 is random or loaded from a SPIN-layout checkpoint written here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from data_helpers import make_clip
from training_helpers import tiny_config, tiny_run_dir, write_config

from datamodules.schema import ShardWriter, iterate_clips, read_manifest
from str_lightning.app.cli import main
from str_lightning.app.lightning_cli import STRLightningCLI
from str_lightning.app.video.demo import (
    image_focal,
    load_demo_model,
    overlay_frames,
    predicted_meshes,
)
from str_lightning.app.video.frames import (
    VideoInputError,
    crop_frame,
    crop_square,
    open_video,
    read_boxes,
)
from str_lightning.geometry import crop_camera_to_image, project_pinhole, project_to_crop
from str_lightning.nets import Regressor, TCMREncoder, VIBEEncoder
from str_lightning.nets.backbone import ResNet50, load_spin_backbone, spin_backbone_state_dict
from str_lightning.runs.directory import RunDirectory

WIDTH, HEIGHT, FRAMES, FPS = 160, 128, 14, 10.0
BOXED = [*range(6), *range(8, 14)]  # frames 6 and 7 have no box: two sequences
BACKGROUND, PERSON = (20, 30, 90), (40, 160, 60)


def person_box(frame: int) -> tuple[float, float, float, float]:
    """A box as wide as the mean body's A-pose is, over a person that walks right."""
    x0 = 20 + 3 * frame
    return (x0, 20, x0 + 76, 110)


def generated_frames() -> np.ndarray:
    frames = np.empty((FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    frames[:] = BACKGROUND
    for t in range(FRAMES):
        x0, y0, x1, y1 = (int(v) for v in person_box(t))
        frames[t, y0:y1, x0:x1] = PERSON
    return frames


@pytest.fixture(scope="module")
def video_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video")
    frames = generated_frames()
    iio.imwrite(root / "walk.mp4", frames, fps=FPS)
    folder = root / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        iio.imwrite(folder / f"{t:05d}.png", frame)
    rows = ["frame,x0,y0,x1,y1"] + [",".join(map(str, (t, *person_box(t)))) for t in BOXED]
    (root / "boxes.csv").write_text("\n".join(rows) + "\n")
    (root / "boxes.json").write_text(json.dumps(
        [dict(zip(("frame", "x0", "y0", "x1", "y1"), (t, *person_box(t)))) for t in BOXED]))
    return {"mp4": root / "walk.mp4", "folder": folder, "csv": root / "boxes.csv",
            "json": root / "boxes.json"}


# ----------------------------------------------------------------------------- boxes and crops


def test_boxes_read_the_same_from_csv_and_json(video_files):
    boxes = read_boxes(video_files["csv"])
    assert boxes == read_boxes(video_files["json"])
    assert sorted(boxes) == BOXED and boxes[3] == person_box(3)


@pytest.mark.parametrize(("text", "message"), [
    ("frame,x0,y0,x1\n0,1,2,3\n", r"boxes\.csv: expected a header with columns frame,x0,y0,x1,y1"),
    ("frame,x0,y0,x1,y1\n0,10,10,5,20\n", r"boxes\.csv, line 2: .*x1 > x0"),
    ("frame,x0,y0,x1,y1\n0,1,1,5,5\n0,2,2,6,6\n", r"line 3: frame 0 has a second box"),
    ("frame,x0,y0,x1,y1\n1.5,1,1,5,5\n", r"line 2: frame: expected an integer >= 0, got '1.5'"),
])
def test_bad_box_files_name_the_row_and_the_problem(tmp_path, text, message):
    (tmp_path / "boxes.csv").write_text(text)
    with pytest.raises(VideoInputError, match=message):
        read_boxes(tmp_path / "boxes.csv")


def test_crop_is_spins_square_around_the_box():
    image = torch.rand(3, 240, 300, dtype=torch.float64)
    # A 1.2-scaled side of exactly 224 px centred on integers: crop pixels are frame pixels.
    box_side = 224 / 1.2
    bbox = torch.tensor([100.0, 100.0, box_side * 0.5, box_side], dtype=torch.float64)
    centre, side = crop_square(bbox)
    assert side.item() == pytest.approx(224.0)
    crop = crop_frame(image, centre, side)
    assert crop.shape == (3, 224, 224)
    # The crop spans frame pixels -12 .. 211 in x and y: its first 12 rows and columns are outside.
    torch.testing.assert_close(crop[:, 12:, 12:], image[:, :212, :212], atol=1e-9, rtol=0)
    assert crop[:, :12].abs().max() == 0 and crop[:, :, :12].abs().max() == 0
    # Twice the crop size: each crop pixel is the mean of a 2x2 block of frame pixels.
    block = image[:, 0:64, 0:64].reshape(3, 32, 2, 32, 2).mean((2, 4))
    top_left = crop_frame(image, torch.tensor([32.0, 32.0]), 64.0, size=32)
    torch.testing.assert_close(top_left, block, atol=1e-9, rtol=0)


# ----------------------------------------------------------------------------- weights


def test_backbone_is_torchvisions_resnet50_without_its_classifier():
    with torch.device("meta"):
        model = ResNet50()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # torchvision's resnet50 has 25,557,032 parameters, 2,049,000 of them in fc (2048 -> 1000).
    assert sum(p.numel() for p in model.parameters()) == 25_557_032 - 2_049_000
    assert shapes["conv1.weight"] == (64, 3, 7, 7)
    assert shapes["layer2.0.conv2.weight"] == (128, 128, 3, 3)  # v1.5: stride on the 3x3
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)
    assert shapes["layer4.0.downsample.0.weight"] == (2048, 1024, 1, 1)
    assert shapes["layer4.2.bn3.running_var"] == (2048,)
    assert len([k for k in shapes if k.startswith("layer3.")]) == 6 * 3 * 6 + 6


def test_spin_checkpoint_weights_load_into_the_resnet50(tmp_path):
    torch.manual_seed(0)
    reference = ResNet50().eval()
    with torch.no_grad():
        for buffer in reference.buffers():
            if buffer.dtype.is_floating_point:
                buffer.uniform_(0.5, 1.5)  # running statistics other than the defaults
    spin_model = {f"module.{k}": v for k, v in reference.state_dict().items()
                  if not k.endswith("num_batches_tracked")}  # as an old torch saved them
    spin_model |= {"module.fc1.weight": torch.zeros(1024, 2205), "module.init_pose": torch.zeros(1, 144)}
    path = tmp_path / "spin_model_checkpoint.pth.tar"
    torch.save({"model": spin_model, "epoch": np.int64(40), "optimizer": {}}, path)
    loaded = load_spin_backbone(path)
    crops = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(crops), reference(crops))
        assert loaded(crops).shape == (2, 2048)

    del spin_model["module.layer3.2.bn2.running_var"]
    with pytest.raises(ValueError, match=r"SPIN model: not SPIN's ResNet-50: missing "
                                         r"\['layer3\.2\.bn2\.running_var'\]"):
        spin_backbone_state_dict(spin_model)


# ----------------------------------------------------------------------------- camera


CAM = torch.tensor([[0.9, 0.1, -0.05]], dtype=torch.float64)
CENTRE = torch.tensor([[500.0, 300.0]], dtype=torch.float64)
SIDE, IMAGE = torch.tensor([200.0], dtype=torch.float64), (640, 480)


@pytest.mark.parametrize("focal", [1000.0, image_focal(*IMAGE)])
def test_crop_camera_in_the_full_image_puts_a_known_point_on_its_pixel(focal):
    translation = crop_camera_to_image(CAM, CENTRE, SIDE, IMAGE, focal)
    point = torch.tensor([[[0.3, -0.4, 0.0]]], dtype=torch.float64)  # on the root plane
    pixel = project_pinhole(point, translation, focal, (320.0, 240.0))
    # Weak perspective in the crop: normalised crop coordinate s (x + tx), crop side = 200 px.
    offset = torch.tensor([[0.3 + 0.1, -0.4 - 0.05]], dtype=torch.float64)
    torch.testing.assert_close(pixel[0], CENTRE + SIDE / 2 * 0.9 * offset, atol=1e-6, rtol=0)


def test_the_demo_camera_agrees_with_the_crop_projection_off_the_root_plane():
    focal = image_focal(*IMAGE)
    translation = crop_camera_to_image(CAM, CENTRE, SIDE, IMAGE, focal)
    points = torch.tensor([[[0.3, -0.4, 0.25], [-0.2, 0.8, -0.3]]], dtype=torch.float64)
    crop_pixels = CENTRE + SIDE / 2 * project_to_crop(points, CAM)[0]
    image_pixels = project_pinhole(points, translation, focal, (320.0, 240.0))[0]
    assert (image_pixels - crop_pixels).abs().max() < 1.0


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize("source", ["mp4", "folder"])
def test_features_command_writes_predict_shards(video_files, tmp_path, source):
    args = ["features", str(video_files[source]), "--boxes", str(video_files["csv"]),
            "--random-weights", "--out", str(tmp_path / "shards")]
    assert main(args + (["--fps", str(FPS)] if source == "folder" else [])) == 0
    manifest = read_manifest(tmp_path / "shards")
    assert (manifest.split, manifest.feature_dim, manifest.samples, manifest.frames) == (
        "predict", 2048, 2, len(BOXED))
    clips = list(iterate_clips(tmp_path / "shards"))
    assert [c["frame_id"].tolist() for c in clips] == [BOXED[:6], BOXED[6:]]
    for clip in clips:
        assert clip["meta"]["fps"] == FPS and clip["meta"]["image_size"] == [WIDTH, HEIGHT]
        assert clip["meta"]["supervision"] == {"kp2d": False, "kp3d": False, "smpl": False}
        np.testing.assert_allclose(clip["bbox"][0], [
            (person_box(clip["meta"]["start"])[0] + 38), 65, 76, 90])
        assert clip["features"].dtype == np.float32 and np.isfinite(clip["features"]).all()
        assert clip["features"].std(0).max() > 0  # the person moves: features change


def test_features_command_reports_bad_input(video_files, tmp_path, capsys):
    (tmp_path / "late.csv").write_text("frame,x0,y0,x1,y1\n3,1,1,20,20\n99,1,1,20,20\n")
    code = main(["features", str(video_files["mp4"]), "--boxes", str(tmp_path / "late.csv"),
                 "--random-weights", "--out", str(tmp_path / "out")])
    assert code == 2
    assert f"{video_files['mp4']}: has {FRAMES} frames, but the boxes name frames [99]" in (
        capsys.readouterr().err)
    code = main(["features", str(video_files["folder"]), "--boxes", str(video_files["csv"]),
                 "--random-weights", "--out", str(tmp_path / "out")])
    assert code == 2 and "pass --fps" in capsys.readouterr().err
    (tmp_path / "broken.mp4").write_text("not a video")
    code = main(["features", str(tmp_path / "broken.mp4"), "--boxes", str(video_files["csv"]),
                 "--random-weights", "--out", str(tmp_path / "out")])
    assert code == 2 and "broken.mp4: cannot read frames" in capsys.readouterr().err


# ----------------------------------------------------------------------------- predict and demo


def fitted_checkpoint(root: Path, feature_dim: int) -> tuple[Path, dict]:
    """A TCMR-like model on ``feature_dim`` features, fitted for one step by the real CLI."""
    for split, lengths, kp3d in (("train", [20, 18], "spin49"), ("val", [12], "common14")):
        with ShardWriter(root / split, dataset="toy", split=split) as writer:
            for i, length in enumerate(lengths):
                clip = make_clip(f"v{i}", length, split=split, kp3d=kp3d, seed=i)
                clip["features"] = np.random.default_rng(i).random((length, feature_dim), np.float32)
                writer.write(clip)
    config = tiny_config(root, root / "runs", "tcmr", max_steps=1, steps_per_epoch=1)
    config["data"]["train_datasets"] = [{"path": str(root / "train"), "weight": 1.0, "group": "3d"}]
    STRLightningCLI(args=["fit", "--config", str(write_config(config, root / "fit.yaml"))])
    return RunDirectory(tiny_run_dir(root / "runs")).last_checkpoint, config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, dict]:
    """A TCMR-like model on SPIN's 2048-d features."""
    return fitted_checkpoint(tmp_path_factory.mktemp("fit"), 2048)


@pytest.fixture(scope="module")
def mean_checkpoint(checkpoint) -> Path:
    """That checkpoint with the regressor's output heads zeroed: whatever the features, it
    predicts the mean body with the mean crop camera (s = 0.9, centred), so where the mesh
    lands in the frame depends only on the box, the crop and the camera conversion."""
    path, _ = checkpoint
    stored = torch.load(path, map_location="cpu", weights_only=True)
    for key in stored["state_dict"]:
        if key.startswith(("regressor.decpose.", "regressor.decshape.", "regressor.deccam.")):
            stored["state_dict"][key].zero_()
    torch.save(stored, path.with_name("mean.ckpt"))
    return path.with_name("mean.ckpt")


def test_feature_shards_are_valid_predict_input(video_files, checkpoint, tmp_path):
    ckpt, config = checkpoint
    assert main(["features", str(video_files["mp4"]), "--boxes", str(video_files["json"]),
                 "--random-weights", "--out", str(tmp_path / "shards")]) == 0
    config["data"]["predict_datasets"] = {"mine": str(tmp_path / "shards")}
    cli = STRLightningCLI(args=["predict", "--config", str(write_config(config, tmp_path / "p.yaml")),
                                "--ckpt_path", str(ckpt), "--return_predictions", "true"])
    predictions = [p for p in cli.trainer.predict_loop.predictions if p is not None]
    assert sorted(p["frame_id"].tolist() for p in predictions) == [BOXED[:6], BOXED[6:]]
    assert all(p["pose"].shape == (6, 72) and np.isfinite(p["pose"]).all() for p in predictions)


def changed_pixels(drawn: np.ndarray, original: np.ndarray) -> np.ndarray:
    return np.abs(drawn.astype(int) - original.astype(int)).max(-1) > 60


def test_demo_draws_the_mesh_on_the_persons_box(video_files, mean_checkpoint, tmp_path):
    ckpt = mean_checkpoint
    out = tmp_path / "demo.gif"
    assert main(["demo", str(video_files["folder"]), "--boxes", str(video_files["csv"]), "--fps",
                 str(FPS), "--random-weights", "--ckpt", str(ckpt), "--out", str(out)]) == 0
    written = iio.imread(out, index=None)
    assert written.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert read_manifest(tmp_path / "demo_features").frames == len(BOXED)

    # The overlay itself, frame by frame (the GIF's palette blurs colours a little).
    model = load_demo_model(ckpt)
    meshes = predicted_meshes(model, iterate_clips(tmp_path / "demo_features"))
    video = open_video(video_files["folder"], FPS)
    originals = generated_frames()
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    for t, drawn in enumerate(overlay_frames(video, meshes, np.asarray(model.regressor.body.faces))):
        changed = changed_pixels(drawn, originals[t])
        if t not in BOXED:
            assert not changed.any(), t
            continue
        x0, y0, x1, y1 = person_box(t)
        in_box = (xx >= x0 - 2) & (xx < x1 + 2) & (yy >= y0 - 2) & (yy < y1 + 2)
        assert not (changed & ~in_box).any(), (t, np.argwhere(changed & ~in_box)[:5])
        rows, cols = np.nonzero(changed)
        # The mean body (s = 0.9 in a crop 1.2 times the box) spans most of the box's height,
        # centred on it.
        assert rows.max() - rows.min() > 0.8 * (y1 - y0), t
        assert abs((cols.min() + cols.max() + 1) / 2 - (x0 + x1) / 2) < 3, t
        assert changed_pixels(written[t], originals[t]).sum() > 0.8 * changed.sum(), t


def test_demo_refuses_a_64d_model_within_2_s_before_computing_features(video_files, tmp_path,
                                                                        capsys):
    ckpt, _ = fitted_checkpoint(tmp_path / "fit64", 64)  # a synthetic-benchmark-sized model
    out = tmp_path / "d.gif"
    start = time.perf_counter()
    code = main(["demo", str(video_files["mp4"]), "--boxes", str(video_files["csv"]),
                 "--random-weights", "--ckpt", str(ckpt), "--out", str(out)])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 2.0, elapsed
    assert f"{ckpt}: its model reads 64-D features, but the demo computes SPIN's 2048-D" in err
    assert "a released TCMR or VIBE file" in err and "paper recipe" in err
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "d_features").exists()


def released_file(fit_checkpoint: Path, path: Path) -> Path:
    """A fit checkpoint's encoder and regressor written as TCMR/VIBE release their models:
    ``gen_state_dict`` with a DataParallel prefix and SMPL buffers, numpy-scalar metadata."""
    state = torch.load(fit_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    generator = {f"module.{key}": value for key, value in state.items()
                 if key.startswith(("encoder.", "regressor."))}
    generator["module.regressor.smpl.faces_tensor"] = torch.zeros(13776, 3, dtype=torch.int64)
    torch.save({"epoch": np.int64(3), "performance": np.float64(52.7),
                "gen_state_dict": generator}, path)
    return path


def test_demo_runs_on_a_released_tcmr_file(video_files, mean_checkpoint, tmp_path):
    """The same weights as a released-format file: the same model (architecture read from the
    parameters, TCMR's edge mode) and the same overlay as from the fit checkpoint."""
    released = released_file(mean_checkpoint, tmp_path / "tcmr_demo_model.pth.tar")
    model, reference = load_demo_model(released, "mannequin"), load_demo_model(mean_checkpoint)
    assert isinstance(model.encoder, TCMREncoder) and model.hparams.edge_mode == "tcmr"
    assert model.hparams.feature_dim == 2048 and model.hparams.regressor_hidden_size == 16
    expected = {k: v for k, v in reference.state_dict().items() if k.startswith(("encoder.", "regressor."))}
    assert {k: v for k, v in model.state_dict().items() if k in expected}.keys() == expected.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    args = ["demo", str(video_files["folder"]), "--boxes", str(video_files["csv"]), "--fps",
            str(FPS), "--random-weights", "--out"]
    assert main([*args, str(tmp_path / "released.gif"), "--ckpt", str(released),
                 "--body-model", "mannequin"]) == 0
    assert main([*args, str(tmp_path / "fit.gif"), "--ckpt", str(mean_checkpoint)]) == 0
    np.testing.assert_array_equal(iio.imread(tmp_path / "released.gif", index=None),
                                  iio.imread(tmp_path / "fit.gif", index=None))


def released_generator(encoder: torch.nn.Module, regressor: Regressor) -> dict[str, torch.Tensor]:
    return ({f"encoder.{k}": v for k, v in encoder.state_dict().items()}
            | {f"regressor.{k}": v for k, v in regressor.state_dict().items()})


def test_demo_reads_a_released_vibe_file(tmp_path):
    encoder, regressor = VIBEEncoder(2048, 16, hidden_size=12, num_layers=2), Regressor(2048, 24)
    torch.save({"gen_state_dict": released_generator(encoder, regressor),
                "disc_motion_state_dict": {}}, tmp_path / "vibe.pth.tar")
    model = load_demo_model(tmp_path / "vibe.pth.tar", "mannequin")
    assert isinstance(model.encoder, VIBEEncoder) and model.encoder.gru.num_layers == 2
    assert model.encoder.gru.hidden_size == 12 and model.hparams.regressor_hidden_size == 24
    assert torch.equal(model.encoder.linear.weight, encoder.linear.weight)


@pytest.mark.parametrize(("content", "message"), [
    ({"gen_state_dict": released_generator(TCMREncoder(2048, 16, 8, 1, 8), Regressor(2048, 16))},
     "holds no body model; pass --body-model DIR"),
    ({"gen_state_dict": {"encoder.gru_cur.weight_ih_l0": torch.zeros(3, 2048)}},
     "the released generator lacks the parameter 'attention.fc.weight'"),
    ({"model": {}, "epoch": 3}, ("expected a str-lightning fit checkpoint (keys 'state_dict', "
                                 "'hyper_parameters') or a released TCMR/VIBE file")),
])
def test_demo_refuses_what_it_cannot_run(video_files, tmp_path, capsys, content, message):
    path = tmp_path / "model.pth.tar"
    torch.save(content, path)
    code = main(["demo", str(video_files["mp4"]), "--boxes", str(video_files["csv"]),
                 "--random-weights", "--ckpt", str(path), "--out", str(tmp_path / "d.gif")])
    err = capsys.readouterr().err
    assert code == 2 and f"{path}: " in err and message in err and "Traceback" not in err
    assert not (tmp_path / "d.gif").exists()
