"""A small software renderer for body meshes: matplotlib Agg, orthographic, painter's algorithm.

Meant for figures and the demo, not for speed: each view draws the front-facing triangles of a
mesh far to near as flat-shaded polygons (Lambert shading from a light over the viewer's
shoulder). Model frame as the mannequin and SMPL: y up, the body faces +z, its left is +x.
:func:`overlay_mesh` draws a mesh given in a camera frame over a video frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

# Per view: (screen-right axis, screen-up axis, toward-the-viewer axis), unit vectors.
VIEWS: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "front": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),  # looking at the face; the body's left on the right
    "side": ((0, 0, -1), (0, 1, 0), (1, 0, 0)),  # from the body's left; it faces the picture's left
    "back": ((-1, 0, 0), (0, 1, 0), (0, 0, -1)),
    "top": ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
}
# A camera frame (x right, y down, z away from the viewer), as the regressor's crop camera.
CAMERA_VIEW = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
_BASE_COLOUR = np.array((0.80, 0.68, 0.58))
_LIGHT = np.array((0.35, 0.55, 0.75))


def _shaded_faces(vertices: np.ndarray, faces: np.ndarray, right: np.ndarray, up: np.ndarray,
                  toward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The faces turned toward the viewer (along ``toward``), far to near, and their colours."""
    depth = vertices @ toward
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    facing = normals @ toward > 0.0
    light = _LIGHT / np.linalg.norm(_LIGHT)
    light_in_model = light[0] * right + light[1] * up + light[2] * toward
    shade = 0.25 + 0.75 * np.clip(normals @ light_in_model, 0.0, 1.0)
    order = np.argsort(depth[faces].mean(1)[facing], kind="stable")
    colours = np.clip(shade[facing][order, None] * _BASE_COLOUR, 0.0, 1.0)
    return faces[facing][order], colours


def _shaded_polygons(vertices: np.ndarray, faces: np.ndarray, view: str):
    right, up, toward = (np.asarray(a, dtype=float) for a in VIEWS[view])
    screen = np.stack((vertices @ right, vertices @ up), -1)
    visible, colours = _shaded_faces(vertices, faces, right, up, toward)
    return screen[visible], colours, screen


def render_views(
    meshes: Sequence[np.ndarray],
    faces: np.ndarray,
    titles: Sequence[str],
    out_png: str | Path,
    views: Sequence[str] = ("front", "side"),
    panel_size: float = 2.6,
) -> Path:
    """Draw every mesh (``(V, 3)`` vertices sharing ``faces``) from every view into one PNG.

    One column per mesh (titled by ``titles``), one row per view (names from ``VIEWS``); all
    panels share one scale, so sizes compare across them. Returns ``out_png``.
    """
    if len(titles) != len(meshes):
        raise ValueError(f"render_views: {len(meshes)} meshes but {len(titles)} titles")
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"render_views: unknown views {unknown}; known: {sorted(VIEWS)}")
    faces = np.asarray(faces, dtype=np.int64)
    meshes = [np.asarray(m, dtype=float) for m in meshes]
    half_extent = 0.55 * max(np.ptp(m, axis=0).max() for m in meshes)
    # A bare Figure renders with Agg and leaves pyplot's global backend alone.
    fig = Figure(figsize=(panel_size * len(meshes), panel_size * 1.25 * len(views)))
    axes = fig.subplots(len(views), len(meshes), squeeze=False)
    for col, (vertices, title) in enumerate(zip(meshes, titles)):
        for row, view in enumerate(views):
            ax = axes[row, col]
            polygons, colours, screen = _shaded_polygons(vertices, faces, view)
            ax.add_collection(PolyCollection(polygons, facecolors=colours, edgecolors=colours,
                                             linewidths=0.2))
            centre = 0.5 * (screen.min(0) + screen.max(0))
            ax.set_xlim(centre[0] - half_extent, centre[0] + half_extent)
            ax.set_ylim(centre[1] - half_extent, centre[1] + half_extent)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title} ({view})", fontsize=8)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    return out_png


def overlay_mesh(image: np.ndarray, pixels: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                 opacity: float = 0.85) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with the mesh drawn over it, same size and dtype.

    ``vertices`` ``(V, 3)`` are in the camera frame (:data:`CAMERA_VIEW`; they pick the visible
    faces, the shading and the drawing order) and ``pixels`` ``(V, 2)`` are where they project
    in the image, in continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``). Pixels
    the mesh does not cover keep their values.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    height, width = image.shape[:2]
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(image, extent=(0, width, height, 0), interpolation="nearest")
    right, up, toward = (np.asarray(a, dtype=float) for a in CAMERA_VIEW)
    visible, colours = _shaded_faces(np.asarray(vertices, float), np.asarray(faces, np.int64),
                                     right, up, toward)
    ax.add_collection(PolyCollection(np.asarray(pixels, float)[visible], facecolors=colours,
                                     edgecolors=colours, linewidths=0.2, alpha=opacity))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
