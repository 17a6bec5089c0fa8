"""Evaluation metrics as ``torchmetrics.Metric`` classes, exact under DDP (docs/evaluation.md).

Every metric keeps two float64 scalar states, ``err_sum`` (metres) and ``count``, both reduced
by ``sum`` across processes, so the value after synchronisation equals the single-process value
whatever the split of frames over ranks (a rank that saw no valid frame simply adds zeros).

Inputs are positions in metres. ``update(pred, target, valid=None)`` takes ``(N, P, 3)`` point
sets (joints or vertices) and an optional mask ``(N,)`` (bool, or integers where nonzero means
valid); :class:`AccelError` takes whole sequences instead (see its docstring). Invalid frames are
dropped before any arithmetic, so padding may hold anything, NaN included. ``compute()`` returns
millimetres (millimetres per frame squared for :class:`AccelError`) as a float64 scalar.

A metric that saw no valid frame on any process has no value: ``compute()`` raises
:class:`EmptyMetricError` rather than returning 0 (a perfect score) or NaN (which loggers and
schedulers drop silently). Consequently call ``update`` and log the metric object; the per-batch
value of ``forward`` raises on a batch without a valid frame.

Root alignment (``root``, :func:`str_lightning.geometry.align_to_root`): a tuple of point indices
whose mean is subtracted from every point of pred and target separately (the common-14 mid-hip
``ROOTS["common14"]`` is the default for joint metrics), one index, or ``None`` for none.

Note that ``torchmetrics.shape.ProcrustesDisparity`` is not PA-MPJPE: it normalises both point
sets to unit Frobenius norm and returns a squared disparity, not a distance in mm.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from str_lightning.body.joints import ROOTS
from str_lightning.geometry import Root, align_to_root, procrustes_errors, root_indices

_MM_PER_M = 1000.0

METRIC_LABELS: dict[str, str] = {"pa_mpjpe": "PA-MPJPE", "mpjpe": "MPJPE", "mpvpe": "MPVPE",
                                 "accel": "Accel"}
"""Display name of every metric key, in the paper's column order (Table 1)."""
METRIC_UNITS: dict[str, str] = {"pa_mpjpe": "mm", "mpjpe": "mm", "mpvpe": "mm",
                                "accel": "mm/frame²"}
"""Unit of what ``compute()`` returns for each metric key."""


class EmptyMetricError(RuntimeError):
    """``compute()`` was called on a metric that saw no valid frame on any process."""


def _check_root(root: Root, owner: str) -> Root:
    if root is None or (isinstance(root, int) and not isinstance(root, bool)):
        return root
    if isinstance(root, (tuple, list)) and root and all(isinstance(i, int) for i in root):
        return tuple(root)
    raise TypeError(f"{owner}: root must be None, an int or a non-empty tuple of ints, got {root!r}")


def _check_points(pred: Tensor, target: Tensor, root: Root, owner: str,
                  layouts: dict[int, str]) -> None:
    """Equal shapes, one of ``layouts`` (dimensions -> description), xyz, root in range."""
    if pred.shape != target.shape or pred.dim() not in layouts or pred.shape[-1] != 3:
        raise ValueError(f"{owner}: pred and target must both have shape "
                         f"{' or '.join(layouts.values())}, "
                         f"got pred {tuple(pred.shape)} and target {tuple(target.shape)}")
    num_points = pred.shape[-2]
    if any(not -num_points <= i < num_points for i in root_indices(root)):
        raise ValueError(f"{owner}: root {root!r} is out of range for {num_points} points "
                         f"(shape {tuple(pred.shape)})")


def _as_mask(valid: Tensor | None, shape: torch.Size, device: torch.device, owner: str) -> Tensor:
    """The validity mask as bool of ``shape`` (all valid when ``valid`` is None)."""
    if valid is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if valid.shape != shape:
        raise ValueError(f"{owner}: valid must have shape {tuple(shape)} (one flag per frame), "
                         f"got {tuple(valid.shape)}")
    if valid.is_floating_point() or valid.is_complex():
        raise TypeError(f"{owner}: valid must be bool or integer (nonzero = valid), "
                        f"got {valid.dtype}")
    return valid.to(device=device, dtype=torch.bool)


class _MeanErrorMetric(Metric):
    """Mean of per-item errors over all processes: float64 ``err_sum`` / ``count`` states."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    err_sum: Tensor
    count: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("err_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def _accumulate(self, errors: Tensor) -> None:
        """Add per-item errors (metres) to the states."""
        self.err_sum += errors.sum().to(self.err_sum)
        self.count += errors.numel()

    def compute(self) -> Tensor:
        """Mean error in millimetres; :class:`EmptyMetricError` when ``count`` is 0 everywhere."""
        if self.count == 0:
            raise EmptyMetricError(
                f"{type(self).__name__}: no valid frame was seen on any process "
                "(every update was empty or fully masked), so there is no value to report")
        return self.err_sum / self.count * _MM_PER_M


class _PointErrorMetric(_MeanErrorMetric):
    """Per-frame mean L2 distance over points after optional root alignment, pooled over frames."""

    def __init__(self, root: Root = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = _check_root(root, type(self).__name__)

    def update(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add frames ``pred``, ``target`` ``(N, P, 3)`` metres; ``valid`` ``(N,)`` selects them."""
        owner = type(self).__name__
        _check_points(pred, target, self.root, owner, {3: "(N, P, 3)"})
        pred, target = pred.detach(), target.detach()
        if valid is not None:
            keep = _as_mask(valid, pred.shape[:1], pred.device, owner)
            pred, target = pred[keep], target[keep]
        self._accumulate(self._frame_errors(pred, target))

    def _frame_errors(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-frame errors (metres, float64) of valid frames in the caller's dtype."""
        pred, target = pred.double(), target.double()
        pred, target = align_to_root(pred, self.root), align_to_root(target, self.root)
        return (pred - target).norm(dim=-1).mean(-1)


class MPJPE(_PointErrorMetric):
    """Mean per-joint position error (mm) after root alignment (default: common-14 mid-hip).

    Per frame: ``mean_j ||(p_j - p_root) - (g_j - g_root)||``; the value is the mean over all
    valid frames of all updates (frames pooled, not per-sequence averages).
    """

    def __init__(self, root: Root = ROOTS["common14"], **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)


class MPVPE(_PointErrorMetric):
    """Mean per-vertex position error (mm); points are mesh vertices ``(N, V, 3)``.

    ``root=None`` (the default, 3DPW protocol) compares the meshes as they are; ``root`` indices
    would refer to vertices. To align on a joint, subtract it from both meshes beforehand.
    """

    def __init__(self, root: Root = None, **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)


class PAMPJPE(_PointErrorMetric):
    """Procrustes-aligned MPJPE (mm).

    Each valid frame's prediction is aligned to its target by the least-squares similarity
    transform (scale, rotation with ``det = +1``, translation; float64), then
    ``mean_j ||p'_j - g_j||``. Root alignment would not change the value, so there is no
    ``root`` argument.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(root=None, **kwargs)

    def _frame_errors(self, pred: Tensor, target: Tensor) -> Tensor:
        return procrustes_errors(pred, target).mean(-1)


class AccelError(_MeanErrorMetric):
    """Acceleration error (mm / frame²) of whole sequences, after root alignment.

    ``update(pred, target, valid=None)`` takes one sequence ``(T, J, 3)`` of consecutive frames
    with ``valid`` ``(T,)``, or a batch of sequences ``(B, T, J, 3)`` with ``valid`` ``(B, T)``
    (pad shorter sequences and mark the padding invalid). Second differences never cross from
    one update or batch item to another. For every inner frame ``t`` (``1 <= t <= T-2``) with
    ``a_t = x_{t-1} - 2 x_t + x_{t+1}`` the term is ``mean_j ||a_t(pred)_j - a_t(gt)_j||``; it
    counts only when frames ``t-1``, ``t`` and ``t+1`` are all valid, so the first and last frame
    never get a term and an invalid frame removes every term it touches.
    """

    def __init__(self, root: Root = ROOTS["common14"], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = _check_root(root, type(self).__name__)

    def update(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add the acceleration terms of one sequence or a batch of sequences (see class doc)."""
        owner = type(self).__name__
        _check_points(pred, target, self.root, owner, {3: "(T, J, 3)", 4: "(B, T, J, 3)"})
        keep = _as_mask(valid, pred.shape[:-2], pred.device, owner)
        frame_mask = keep[..., None, None]
        # Zero the invalid frames first: their values never reach a counted term, but NaN * 0
        # would still poison a sum.
        pred = torch.where(frame_mask, pred.detach().double(), 0.0)
        target = torch.where(frame_mask, target.detach().double(), 0.0)
        pred, target = align_to_root(pred, self.root), align_to_root(target, self.root)
        error = (second_difference(pred) - second_difference(target)).norm(dim=-1).mean(-1)
        counted = keep[..., :-2] & keep[..., 1:-1] & keep[..., 2:]
        self._accumulate(error[counted])


def second_difference(x: Tensor) -> Tensor:
    """``x[t-1] - 2 x[t] + x[t+1]`` along the frame axis (dim -3): ``(..., T-2, J, 3)``
    (numpy arrays work too)."""
    return x[..., :-2, :, :] - 2 * x[..., 1:-1, :, :] + x[..., 2:, :, :]
