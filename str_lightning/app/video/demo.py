"""``str-lightning demo``: a video and its person boxes to a video or GIF of the predicted mesh.

The chain: a trained model (a fit checkpoint or a released TCMR/VIBE file, :func:`load_demo_model`,
refused first unless it reads SPIN's 2048-D features),
:func:`~str_lightning.app.video.features.write_video_shards` (crops through SPIN's ResNet-50 into
clip shards), whole-sequence inference of the model on every clip read back from those shards
(:meth:`PoseShapeModule.predict_frames`), then each mesh drawn over its frame.
The crop camera is moved into one full-image pinhole camera (focal ``5000 / 224 * max(W, H)``
pixels, principal point at the image centre) by :func:`str_lightning.geometry.crop_camera_to_image`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from datamodules.schema import iterate_clips
from str_lightning.app.video.features import write_video_shards
from str_lightning.app.video.frames import CROP_SIZE, Video, VideoInputError, crop_square
from str_lightning.body.render import overlay_mesh
from str_lightning.geometry import crop_camera_to_image, project_pinhole
from str_lightning.modules import PoseShapeModule
from str_lightning.nets import ModelFileError
from str_lightning.nets.backbone import FEATURE_DIM as SPIN_FEATURE_DIM
from str_lightning.nets.released import GENERATOR_KEY, RELEASED_SEQ_LEN, released_architecture
from str_lightning.runs.checkpoints import UNREADABLE_CHECKPOINT_ERRORS
from str_lightning.safe_pickle import load_torch_file

CROP_FOCAL = 5000.0  # the regressor's crop camera (str_lightning.geometry.project_to_crop)
GIF_SUFFIX = ".gif"


def image_focal(width: int, height: int) -> float:
    """The full-image focal length in pixels: the crop camera's field of view over the longer
    side of the frame."""
    return CROP_FOCAL / CROP_SIZE * max(width, height)


def load_demo_model(checkpoint: str | Path, body_model: str | None = None) -> PoseShapeModule:
    """The model of ``checkpoint`` on the CPU in eval mode, refused unless it reads SPIN's
    2048-D features (the demo computes those), before any feature is computed.

    ``checkpoint`` is a ``str-lightning fit`` checkpoint (its own class, encoder and body model;
    ``body_model`` replaces the body model when given) or a released TCMR/VIBE ``.pth.tar``
    (architecture read from its parameters, :func:`released_architecture`; ``body_model`` is
    then required: the file holds no body model). Read with ``weights_only=True``.
    """
    stored = _read_checkpoint(checkpoint)
    if GENERATOR_KEY in stored:
        return _released_model(checkpoint, stored[GENERATOR_KEY], body_model)
    if not {"state_dict", "hyper_parameters"} <= stored.keys():
        raise VideoInputError(
            f"{checkpoint}: expected a str-lightning fit checkpoint (keys 'state_dict', "
            f"'hyper_parameters') or a released TCMR/VIBE file (key {GENERATOR_KEY!r}), found "
            f"{list(stored)[:8]}")
    hparams = stored["hyper_parameters"]
    _check_feature_dim(checkpoint, hparams.get("feature_dim"))
    class_path = hparams.get("_class_path", f"{PoseShapeModule.__module__}.PoseShapeModule")
    module_name, _, class_name = class_path.rpartition(".")
    module_class = getattr(importlib.import_module(module_name), class_name, None)
    if not _is_model_class(module_class):
        raise VideoInputError(f"{checkpoint}: expected a checkpoint of str-lightning fit, whose "
                              f"model is a PoseShapeModule; it names {class_path!r}")
    overrides = {"body_model": body_model} if body_model else {}
    model = module_class.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True,
                                              **overrides)
    return model.eval()


def _is_model_class(candidate: object) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, PoseShapeModule)


def _read_checkpoint(checkpoint: str | Path) -> dict:
    try:
        stored = load_torch_file(checkpoint)
    except FileNotFoundError:  # reported as it is
        raise
    except UNREADABLE_CHECKPOINT_ERRORS as error:
        raise VideoInputError(f"{checkpoint}: not a checkpoint that can be read safely "
                              f"({type(error).__name__}: {error})") from error
    if not isinstance(stored, dict):
        raise VideoInputError(f"{checkpoint}: expected a checkpoint (a dict), found "
                              f"{type(stored).__name__}")
    return stored


def _check_feature_dim(checkpoint: str | Path, feature_dim: int | None) -> None:
    if feature_dim == SPIN_FEATURE_DIM:
        return
    raise VideoInputError(
        f"{checkpoint}: its model reads {feature_dim}-D features, but the demo computes SPIN's "
        f"{SPIN_FEATURE_DIM}-D ResNet-50 features (a synthetic-benchmark model reads the "
        f"benchmark's own small features). The demo needs a model trained on "
        f"{SPIN_FEATURE_DIM}-D features: a released TCMR or VIBE file (e.g. "
        "tcmr_demo_model.pth.tar from TCMR's downloads) as --ckpt with --body-model DIR, or a fit "
        "of a paper recipe (configs/experiment/paper_*.yaml) on converted real data "
        "(docs/usage-own-video.md)")


def _released_model(checkpoint: str | Path, generator: dict, body_model: str | None) -> PoseShapeModule:
    try:
        architecture = released_architecture(generator)
    except ModelFileError as error:
        raise ModelFileError(f"{checkpoint}: {error}") from None
    _check_feature_dim(checkpoint, architecture["feature_dim"])
    if not body_model:
        raise VideoInputError(
            f"{checkpoint}: a released TCMR/VIBE file holds no body model; pass --body-model "
            "DIR, the SMPL directory its weights were trained with (docs/body.md), or "
            "--body-model mannequin to try the plumbing (the meshes are then meaningless)")
    module_name, _, class_name = architecture["encoder"]["class_path"].rpartition(".")
    encoder_class = getattr(importlib.import_module(module_name), class_name)
    encoder_args = architecture["encoder"]["init_args"]
    model = PoseShapeModule(
        lambda dim, length: encoder_class(dim, length, **encoder_args),
        feature_dim=architecture["feature_dim"], seq_len=RELEASED_SEQ_LEN, body_model=body_model,
        regressor_hidden_size=architecture["regressor_hidden_size"],
        released_checkpoint=str(checkpoint), edge_mode=architecture["edge_mode"])
    return model.eval()


def mesh_in_image(vertices: Tensor, cam: Tensor, bbox: Tensor, image_size: tuple[int, int]
                  ) -> tuple[Tensor, Tensor]:
    """Vertices ``(N, V, 3)`` predicted with crop cameras ``cam`` ``(N, 3)`` for the boxes
    ``bbox`` ``(N, 4) = (cx, cy, w, h)``: the same vertices in the full-image camera frame and
    their pixels ``(N, V, 2)``."""
    focal = image_focal(*image_size)
    centre, side = crop_square(bbox.to(cam.dtype))
    translation = crop_camera_to_image(cam, centre, side, image_size, focal)
    width, height = image_size
    pixels = project_pinhole(vertices, translation, focal, (width / 2, height / 2))
    return vertices + translation.unsqueeze(-2), pixels


def predicted_meshes(model: PoseShapeModule, clips: Iterable[dict]
                     ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Frame index -> (camera-frame vertices, pixels) for every frame of ``clips``."""
    meshes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for clip in clips:
        rows = model.predict_frames(torch.from_numpy(clip["features"]).float())
        width, height = clip["meta"]["image_size"]
        vertices, pixels = mesh_in_image(rows["vertices"], rows["cam"],
                                         torch.from_numpy(clip["bbox"]), (width, height))
        for frame, v, p in zip(clip["frame_id"].tolist(), vertices.numpy(), pixels.numpy()):
            meshes[frame] = (v, p)
    return meshes


def overlay_frames(video: Video, meshes: dict[int, tuple[np.ndarray, np.ndarray]],
                   faces: np.ndarray) -> Iterator[np.ndarray]:
    """Every frame of ``video``, with its mesh drawn where it has one."""
    for index, frame in enumerate(video.frames()):
        if index in meshes:
            vertices, pixels = meshes[index]
            frame = overlay_mesh(frame, pixels, vertices, faces)
        yield frame


def write_video(frames: Iterable[np.ndarray], out: str | Path, fps: float) -> Path:
    """Write frames as a GIF (``.gif``) or a video of any container ffmpeg writes (``.mp4``)."""
    import imageio.v2 as imageio
    import imageio.v3 as iio

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == GIF_SUFFIX:
        iio.imwrite(out, np.stack(list(frames)), duration=1000.0 / fps, loop=0)
        return out
    with imageio.get_writer(out, fps=fps, macro_block_size=2) as writer:
        for frame in frames:
            writer.append_data(frame)
    return out


def run_demo(video: Video, boxes: dict[int, tuple[float, float, float, float]],
             model: PoseShapeModule, out: str | Path, backbone: nn.Module,
             features_dir: str | Path | None = None, batch_size: int = 32,
             device: str = "cpu") -> Path:
    """Features -> predictions of ``model`` (:func:`load_demo_model`) -> overlay (see the module
    docstring). The clip shards go to ``features_dir`` (default: ``<out without
    suffix>_features``, overwritten)."""
    out = Path(out)
    features_dir = Path(features_dir or out.with_name(f"{out.stem}_features"))
    write_video_shards(video, boxes, backbone, features_dir, batch_size=batch_size,
                       device=device, overwrite=True)
    meshes = predicted_meshes(model, iterate_clips(features_dir))
    faces = model.regressor.body.faces
    return write_video(overlay_frames(video, meshes, np.asarray(faces)), out, video.fps)
