"""Joint sets: names, orders and conversion. The only place in the project that knows them.

Names follow the TCMR/VIBE convention (``lib/data_utils/kp_utils.py`` in those repositories): a
joint that means the same body point in two sets has the same name in both, so conversion between
sets is by name. The orders are those of SPIN, VIBE and TCMR:

- ``smpl24``: the SMPL kinematic tree, the first 24 joints smplx returns.
- ``spin49``: 25 OpenPose BODY_25 slots (prefixed ``op_``) followed by 24 "ground-truth" joints.
- ``common14``: ``spin49[25:39]``; the LSP order used by 3DPW / H36M evaluation. Root = mean(2, 3).
- ``h36m17``: the rows of ``J_regressor_h36m``.
- ``mpii3d17``: the MPI-INF-3DHP test order; root = index 14 (``hip``).
- ``insta25``: InstaVariety's 2D keypoints on VIBE's OpenPose slots.
"""

from __future__ import annotations

import numpy as np
import torch

from str_lightning.host_syncs import device_index

SMPL24 = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "smpl_neck",
    "left_collar", "right_collar", "smpl_head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# The 21 vertex-picked joints smplx appends after the 24 SMPL joints, in smplx's order.
SMPLX_VERTEX_JOINTS = (
    "nose", "reye", "leye", "rear", "lear",
    "lbigtoe", "lsmalltoe", "lheel", "rbigtoe", "rsmalltoe", "rheel",
    "lthumb", "lindex", "lmiddle", "lring", "lpinky",
    "rthumb", "rindex", "rmiddle", "rring", "rpinky",
)
# Rows of J_regressor_extra.npy (9 x 6890), appended after smplx's 45 joints.
EXTRA9 = ("rhip", "lhip", "neck", "headtop", "hip", "thorax", "spine_h36m", "jaw_h36m", "head_h36m")

SPIN49 = (
    "op_nose", "op_neck", "op_rshoulder", "op_relbow", "op_rwrist", "op_lshoulder", "op_lelbow",
    "op_lwrist", "op_midhip", "op_rhip", "op_rknee", "op_rankle", "op_lhip", "op_lknee",
    "op_lankle", "op_reye", "op_leye", "op_rear", "op_lear", "op_lbigtoe", "op_lsmalltoe",
    "op_lheel", "op_rbigtoe", "op_rsmalltoe", "op_rheel",
    "rankle", "rknee", "rhip", "lhip", "lknee", "lankle", "rwrist", "relbow", "rshoulder",
    "lshoulder", "lelbow", "lwrist", "neck", "headtop",
    "hip", "thorax", "spine_h36m", "jaw_h36m", "head_h36m", "nose", "leye", "reye", "lear", "rear",
)
COMMON14_IN_SPIN49 = slice(25, 39)  # a slice, so selecting them copies no index to the device
COMMON14 = SPIN49[COMMON14_IN_SPIN49]
H36M17 = (
    "hip", "lhip", "lknee", "lankle", "rhip", "rknee", "rankle", "spine_h36m", "neck", "head_h36m",
    "headtop", "lshoulder", "lelbow", "lwrist", "rshoulder", "relbow", "rwrist",
)
MPII3D17 = (
    "headtop", "neck", "rshoulder", "relbow", "rwrist", "lshoulder", "lelbow", "lwrist", "rhip",
    "rknee", "rankle", "lhip", "lknee", "lankle", "hip", "spine_h36m", "head_h36m",
)
# InstaVariety's 25 keypoints (VIBE's insta_train_db.h5) named onto the slots VIBE assigns them
# in its db files: its LSP ankles sit in the OpenPose heel slots, its toes in the OpenPose toe/ankle
# slots and its head top in ``headtop``.
INSTA25 = (
    "op_rheel", "op_rknee", "op_rhip", "op_lhip", "op_lknee", "op_lheel", "op_rwrist",
    "op_relbow", "op_rshoulder", "op_lshoulder", "op_lelbow", "op_lwrist", "op_neck", "headtop",
    "op_nose", "op_leye", "op_reye", "op_lear", "op_rear", "op_lbigtoe", "op_rbigtoe",
    "op_lsmalltoe", "op_rsmalltoe", "op_lankle", "op_rankle",
)

JOINT_SETS: dict[str, tuple[str, ...]] = {
    "smpl24": SMPL24,
    "spin49": SPIN49,
    "common14": COMMON14,
    "h36m17": H36M17,
    "mpii3d17": MPII3D17,
    "insta25": INSTA25,
}

# SMPL parameter sizes: every module that shapes a pose, betas or spin-49 array uses these.
NUM_SMPL_JOINTS = len(SMPL24)  # 24 joints of the kinematic tree
NUM_POSE_PARAMS = 3 * NUM_SMPL_JOINTS  # 72: axis-angle per joint, global orientation first
NUM_POSE_6D = 6 * NUM_SMPL_JOINTS  # 144: the same in the 6D rotation representation
NUM_BETAS = 10  # shape coefficients (SMPL's 10; SMPL+H/X files may ship more)
NUM_SPIN_JOINTS = len(SPIN49)  # 49: the joints every model predicts and the losses supervise

# Where each spin-49 joint comes from in the 54 joints [smpl24 | smplx vertex joints 21 | extra9]
# (SPIN's JOINT_MAP). The GT hips come from J_regressor_extra, not from the SMPL hips.
_SMPLX54 = SMPL24 + SMPLX_VERTEX_JOINTS + EXTRA9
_SPIN_SOURCE = {
    "op_nose": "nose", "op_neck": "smpl_neck", "op_rshoulder": "right_shoulder",
    "op_relbow": "right_elbow", "op_rwrist": "right_wrist", "op_lshoulder": "left_shoulder",
    "op_lelbow": "left_elbow", "op_lwrist": "left_wrist", "op_midhip": "pelvis",
    "op_rhip": "right_hip", "op_rknee": "right_knee", "op_rankle": "right_ankle",
    "op_lhip": "left_hip", "op_lknee": "left_knee", "op_lankle": "left_ankle",
    "op_reye": "reye", "op_leye": "leye", "op_rear": "rear", "op_lear": "lear",
    "op_lbigtoe": "lbigtoe", "op_lsmalltoe": "lsmalltoe", "op_lheel": "lheel",
    "op_rbigtoe": "rbigtoe", "op_rsmalltoe": "rsmalltoe", "op_rheel": "rheel",
    "rankle": "right_ankle", "rknee": "right_knee", "rhip": "rhip", "lhip": "lhip",
    "lknee": "left_knee", "lankle": "left_ankle", "rwrist": "right_wrist",
    "relbow": "right_elbow", "rshoulder": "right_shoulder", "lshoulder": "left_shoulder",
    "lelbow": "left_elbow", "lwrist": "left_wrist",
}
SPIN49_FROM_SMPLX54: tuple[int, ...] = tuple(
    _SMPLX54.index(_SPIN_SOURCE.get(name, name)) for name in SPIN49
)

# Evaluation roots: a tuple means the mean of those joints.
ROOTS: dict[str, tuple[int, ...]] = {
    "common14": (COMMON14.index("rhip"), COMMON14.index("lhip")),
    "h36m17": (H36M17.index("hip"),),
    "mpii3d17": (MPII3D17.index("hip"),),
    "spin49": (SPIN49.index("rhip"), SPIN49.index("lhip")),
}


def joint_names(joint_set: str) -> tuple[str, ...]:
    """Names of ``joint_set`` in order; a clear error for an unknown set."""
    try:
        return JOINT_SETS[joint_set]
    except KeyError:
        raise KeyError(f"unknown joint set {joint_set!r}; known: {sorted(JOINT_SETS)}") from None


def conversion_indices(src: str, dst: str) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(dst_idx, src_idx)`` of the joints the two sets share, matched by name."""
    dst_idx, src_idx = _shared_joints(src, dst)
    return np.asarray(dst_idx, dtype=np.int64), np.asarray(src_idx, dtype=np.int64)


def _shared_joints(src: str, dst: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """:func:`conversion_indices` as Python ints, which ``torch.compile`` reads as constants
    (numpy arrays it would trace as tensors, and their values as data)."""
    src_names = joint_names(src)
    pairs = [(i, src_names.index(n)) for i, n in enumerate(joint_names(dst)) if n in src_names]
    dst_idx, src_idx = zip(*pairs) if pairs else ((), ())
    return tuple(dst_idx), tuple(src_idx)


def convert_joints(joints: np.ndarray | torch.Tensor, src: str, dst: str):
    """Convert ``(..., J_src, C)`` joints from set ``src`` to set ``dst`` by name.

    Joints ``dst`` has and ``src`` lacks are zeros in every channel, confidence included
    (VIBE's ``convert_kps`` rule). Works on numpy arrays and torch tensors alike.
    """
    n_src = len(joint_names(src))
    if joints.shape[-2] != n_src:
        raise ValueError(
            f"convert_joints: {src} has {n_src} joints, got shape {tuple(joints.shape)}"
        )
    shape = (*joints.shape[:-2], len(joint_names(dst)), joints.shape[-1])
    if isinstance(joints, torch.Tensor):
        out = joints.new_zeros(shape)
        dst_index, src_index = (device_index(i, joints.device) for i in _shared_joints(src, dst))
        out[..., dst_index, :] = joints[..., src_index, :]
    else:
        dst_idx, src_idx = conversion_indices(src, dst)
        out = np.zeros(shape, dtype=joints.dtype)
        out[..., dst_idx, :] = joints[..., src_idx, :]
    return out
