"""``str-lightning export PRED.npz... --format obj|ply|npz|amass|bvh --out DIR`` (docs/predictions.md).

Turns prediction files (:mod:`str_lightning.outputs.predictions`) into:

- ``obj`` / ``ply``: one mesh per frame, ``<sequence>_<frame_id:06d>.obj|ply``;
- ``npz``: ``<sequence>_meshes.npz`` with ``vertices`` (N, V, 3), ``faces`` (F, 3), ``frame_id``
  and ``fps``;
- ``amass``: ``<sequence>_poses.npz`` with ``poses`` (N, 72), ``betas`` (10,), ``trans`` (N, 3),
  ``mocap_framerate``, ``gender`` (``neutral``) and ``surface_model_type`` (``smpl``);
- ``bvh``: ``<sequence>.bvh``, the SMPL kinematic tree with the person's own bone lengths.

Conventions (the same for every format): the predicted global orientation maps the body into
the crop camera's frame (x right, y down, z away from the camera); ``--up y`` (default for
meshes and BVH) turns that frame upright (x right, y up, z towards the camera), ``--up z``
(default for ``amass``) makes z up and y point away from the camera, ``--up camera`` keeps it.
The rotation is applied to the root joint, about the pelvis. Translation is zero: the crop
camera's translation is a weak-perspective framing of the crop (a 5000 px focal length), not a
trajectory, so the pelvis stays where the body model's rest pose puts it. Meshes use each frame's
predicted betas; ``amass`` and ``bvh`` hold one shape per sequence, the mean of the frames' betas.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from str_lightning.body import BodyModel
from str_lightning.body.joints import NUM_POSE_PARAMS, NUM_SMPL_JOINTS, SMPL24
from str_lightning.geometry import axis_angle_to_rotmat, axis_rotation, rotmat_to_axis_angle
from str_lightning.outputs.bvh import write_bvh
from str_lightning.outputs.predictions import read_prediction_file

FORMATS = ("obj", "ply", "npz", "amass", "bvh")
UP_AXES = ("y", "z", "camera")
DEFAULT_UP = {"obj": "y", "ply": "y", "npz": "y", "amass": "z", "bvh": "y"}
BVH_UNITS_PER_METRE = 100.0  # centimetres, the usual BVH unit
_MESH_CHUNK = 256  # frames per body-model call


def upright_rotation(up: str) -> torch.Tensor:
    """The rotation ``(3, 3)`` (float64) from the crop camera's frame to the ``up`` frame."""
    angles = {"y": math.pi, "z": -math.pi / 2, "camera": 0.0}
    if up not in angles:
        raise ValueError(f"--up must be one of {UP_AXES}, got {up!r}")
    return axis_rotation(torch.tensor(angles[up], dtype=torch.float64), 0)


def joint_rotations(pose: np.ndarray, up: str) -> torch.Tensor:
    """Axis-angle ``pose`` (N, 72) to rotation matrices (N, 24, 3, 3) (float64), the root's
    turned into the ``up`` frame."""
    rotmat = axis_angle_to_rotmat(torch.as_tensor(pose, dtype=torch.float64).reshape(-1, NUM_SMPL_JOINTS, 3))
    rotmat[:, 0] = upright_rotation(up) @ rotmat[:, 0]
    return rotmat


def posed_vertices(body: BodyModel, rotmat: torch.Tensor, betas: np.ndarray) -> np.ndarray:
    """Meshes ``(N, V, 3)`` (float32) of the rotations and per-frame betas."""
    betas_t = torch.as_tensor(betas, dtype=torch.float32)
    with torch.no_grad():
        return torch.cat([body(rotmat[i:i + _MESH_CHUNK].float(), betas_t[i:i + _MESH_CHUNK]).vertices
                          for i in range(0, len(rotmat), _MESH_CHUNK)]).numpy()


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """A Wavefront OBJ of one mesh (faces are 0-based here, 1-based in the file)."""
    # one %-formatting of the whole array: about 3x faster than formatting row by row
    vertex_lines = "v %.6f %.6f %.6f\n" * len(vertices) % tuple(vertices.ravel().tolist())
    face_lines = "f %d %d %d\n" * len(faces) % tuple((faces + 1).ravel().tolist())
    path.write_text("# str-lightning export\n" + vertex_lines + face_lines)
    return path


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """A binary little-endian PLY of one mesh (float32 vertices, int32 triangle indices)."""
    header = ("ply\nformat binary_little_endian 1.0\ncomment str-lightning export\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\n"
              f"property float z\nelement face {len(faces)}\n"
              "property list uchar int vertex_indices\nend_header\n")
    face_records = np.empty(len(faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    face_records["count"], face_records["indices"] = 3, faces
    with path.open("wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(np.ascontiguousarray(vertices, dtype="<f4").tobytes())
        handle.write(face_records.tobytes())
    return path


def export_meshes(pred: dict[str, np.ndarray], body: BodyModel, fmt: str, up: str,
                  out_dir: Path) -> list[Path]:
    """Per-frame ``obj``/``ply`` files or one ``npz`` of the sequence's meshes."""
    vertices = posed_vertices(body, joint_rotations(pred["pose"], up), pred["betas"])
    stem = str(pred["sequence"])
    if fmt == "npz":
        path = out_dir / f"{stem}_meshes.npz"
        np.savez(path, vertices=vertices, faces=body.faces, frame_id=pred["frame_id"],
                 fps=pred["fps"])
        return [path]
    writer = write_obj if fmt == "obj" else write_ply
    return [writer(out_dir / f"{stem}_{int(frame):06d}.{fmt}", frame_vertices, body.faces)
            for frame, frame_vertices in zip(pred["frame_id"], vertices)]


def export_amass(pred: dict[str, np.ndarray], up: str, out_dir: Path) -> Path:
    """SMPL parameters in the layout AMASS-style tools read (see the module doc)."""
    poses = rotmat_to_axis_angle(joint_rotations(pred["pose"], up)).reshape(-1, NUM_POSE_PARAMS).numpy()
    path = out_dir / f"{pred['sequence']}_poses.npz"
    np.savez(path, poses=poses, betas=pred["betas"].mean(0).astype(np.float64),
             trans=np.zeros((len(poses), 3)), mocap_framerate=np.float64(pred["fps"]),
             gender=np.asarray("neutral"), surface_model_type=np.asarray("smpl"))
    return path


def export_bvh(pred: dict[str, np.ndarray], body: BodyModel, up: str, out_dir: Path) -> Path:
    """A BVH of the sequence on the person's own skeleton: bone offsets from the shaped rest
    joints ``J(mean betas)``, joint rotations from the pose, root at the rest pelvis."""
    betas = torch.as_tensor(pred["betas"].mean(0, keepdims=True), dtype=torch.float32)
    with torch.no_grad():
        rest = body.rest_joints(betas)[0].double().numpy() * BVH_UNITS_PER_METRE
    parents = body.parents
    offsets = np.stack([rest[j] - rest[p] if p >= 0 else rest[j] for j, p in enumerate(parents)])
    rotations = joint_rotations(pred["pose"], up).numpy()
    fps = float(pred["fps"])
    return write_bvh(out_dir / f"{pred['sequence']}.bvh", SMPL24, parents, offsets,
                     np.repeat(rest[:1], len(rotations), axis=0), rotations,
                     frame_time=1.0 / fps if fps > 0 else 0.0)


def export_file(path: Path, fmt: str, out_dir: Path, body_model: str | None = None,
                up: str | None = None) -> list[Path]:
    """Export one prediction file; ``body_model`` defaults to the one the file names."""
    pred = read_prediction_file(path)
    up = up or DEFAULT_UP[fmt]
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "amass":
        return [export_amass(pred, up, out_dir)]
    body = BodyModel(body_model or str(pred["body_model"]))
    if fmt == "bvh":
        return [export_bvh(pred, body, up, out_dir)]
    return export_meshes(pred, body, fmt, up, out_dir)
