"""``str-lightning demo``: a video and its person boxes to a video or GIF of the predicted mesh.

The chain: :func:`~str_lightning.app.video.features.write_video_shards` (crops through SPIN's
ResNet-50 into clip shards), whole-sequence inference of a trained model on every clip read back
from those shards (:meth:`PoseShapeModule.predict_frames`), then each mesh drawn over its frame.
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

from str_lightning.app.video.features import write_video_shards
from str_lightning.app.video.frames import CROP_SIZE, Video, VideoInputError, crop_square
from str_lightning.body.render import overlay_mesh
from str_lightning.geometry import crop_camera_to_image, project_pinhole
from str_lightning.modules import PoseShapeModule
from str_lightning.safe_pickle import load_torch_file

CROP_FOCAL = 5000.0  # the regressor's crop camera (str_lightning.geometry.project_to_crop)
GIF_SUFFIX = ".gif"


def image_focal(width: int, height: int) -> float:
    """The full-image focal length in pixels: the crop camera's field of view over the longer
    side of the frame."""
    return CROP_FOCAL / CROP_SIZE * max(width, height)


def load_trained_model(checkpoint: str | Path) -> PoseShapeModule:
    """The model of a ``str-lightning fit`` checkpoint (its own class: PoseShapeModule or a
    subclass such as VIBEModule), on the CPU in eval mode; read with ``weights_only=True``."""
    stored = load_torch_file(checkpoint)
    if not isinstance(stored, dict) or not {"state_dict", "hyper_parameters"} <= stored.keys():
        found = list(stored)[:8] if isinstance(stored, dict) else type(stored).__name__
        raise VideoInputError(f"{checkpoint}: expected a str-lightning fit checkpoint (keys "
                         f"'state_dict', 'hyper_parameters'), found {found}; a released "
                         f"TCMR/VIBE file goes through str-lightning predict with "
                         f"--model.init_args.released_checkpoint (docs/usage-own-video.md)")
    hparams = stored["hyper_parameters"]
    class_path = hparams.get("_class_path", f"{PoseShapeModule.__module__}.PoseShapeModule")
    module_name, _, class_name = class_path.rpartition(".")
    module_class = getattr(importlib.import_module(module_name), class_name, None)
    if not _is_model_class(module_class):
        raise VideoInputError(f"{checkpoint}: expected a checkpoint of str-lightning fit, whose model "
                         f"is a PoseShapeModule; it names {class_path!r}")
    model = module_class.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    return model.eval()


def _is_model_class(candidate: object) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, PoseShapeModule)


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
             checkpoint: str | Path, out: str | Path, backbone: nn.Module,
             features_dir: str | Path | None = None, batch_size: int = 32,
             device: str = "cpu") -> Path:
    """Features -> predictions -> overlay (see the module docstring). The clip shards go to
    ``features_dir`` (default: ``<out without suffix>_features``, overwritten)."""
    from datamodules.schema import iterate_clips  # datamodules import us, not the other way

    out = Path(out)
    features_dir = Path(features_dir or out.with_name(f"{out.stem}_features"))
    model = load_trained_model(checkpoint)
    write_video_shards(video, boxes, backbone, features_dir, batch_size=batch_size,
                       device=device, overwrite=True)
    meshes = predicted_meshes(model, iterate_clips(features_dir))
    faces = model.regressor.body.faces
    return write_video(overlay_frames(video, meshes, np.asarray(faces)), out, video.fps)
