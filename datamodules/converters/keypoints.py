"""2D keypoints of the db files: joint order to spin-49 and pixels to normalised crop coordinates.

Normalisation: TCMR's and VIBE's Dataset warps keypoints with the affine map that takes the
square of side ``1.2 * w`` (``1.2 * h`` vertically) centred on the bbox centre to a 224 x 224
crop, ``u = 112 + (x - cx) * 224 / (1.2 w)``, and then maps the crop to [-1, 1] with
``2 u / 224 - 1``. Composed, ``x_n = (x - cx) / (0.6 w)`` and ``y_n = (y - cy) / (0.6 h)``, so the
corners of the 1.2-scaled box land on -1 and +1.

InstaVariety keypoints are already pixels of the 224 x 224 image the features were computed
from, and VIBE normalises them with ``x / 112 - 1``. That is the rule above for the virtual bbox
``INSTA_CROP_BBOX`` (centre 112, side 224 / 1.2), which is how we apply it: one formula for all.
"""

from __future__ import annotations

import numpy as np

KEYPOINT_CROP_SCALE = 1.2
CROP_SIZE = 224.0
INSTA_CROP_BBOX = (CROP_SIZE / 2, CROP_SIZE / 2, CROP_SIZE / KEYPOINT_CROP_SCALE,
                   CROP_SIZE / KEYPOINT_CROP_SCALE)

def normalise_to_crop(keypoints: np.ndarray, bbox: np.ndarray,
                      scale: float = KEYPOINT_CROP_SCALE) -> np.ndarray:
    """Pixel keypoints ``(N, J, 3)`` (x, y, confidence) to normalised crop coordinates.

    ``bbox`` is ``(N, 4)`` [cx, cy, w, h] px. Returns float64 ``(N, J, 3)``: x and y as in the
    module docstring, confidence unchanged. Joints with confidence 0 and frames whose bbox has
    a non-positive side get (0, 0, 0): nothing about them can be normalised or supervised.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    bbox = np.asarray(bbox, dtype=np.float64)
    usable_box = (bbox[:, 2] > 0) & (bbox[:, 3] > 0)
    half_sides = np.where(usable_box[:, None], bbox[:, 2:4] * scale / 2, 1.0)
    out = keypoints.copy()
    out[..., :2] = (keypoints[..., :2] - bbox[:, None, :2]) / half_sides[:, None, :]
    keep = (keypoints[..., 2] > 0) & usable_box[:, None]
    out[~keep] = 0.0
    return out
