"""Per-dataset evaluation protocols (docs/evaluation.md): the only place that knows them.

A protocol fixes which joints are compared, how the predicted ones are obtained, the root they
are aligned on, and which metrics are reported:

- ``3dpw``: common-14 joints; predicted = ``J_regressor_h36m`` on the predicted mesh, then
  common-14; mid-hip root; MPJPE, PA-MPJPE, Accel, and MPVPE (neutral-model GT mesh, no
  alignment at all).
- ``mpii3d``: MPI-INF-3DHP-17 joints; predicted = the SMPL spin-49 joints converted by name
  (no H36M regressor); root = joint 14 (``hip``), which stays inside the mean; no MPVPE.
- ``h36m``: common-14 as for 3DPW (TCMR's 14-joint protocol, not the 17-joint P1/P2); no MPVPE.
- ``synthetic``: as 3DPW (its GT meshes come from the same body model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from torch import Tensor
from torchmetrics import Metric, MetricCollection

from str_lightning.body.joints import ROOTS, conversion_indices, convert_joints, joint_names
from str_lightning.evaluation.metrics import MPJPE, MPVPE, PAMPJPE, AccelError

if TYPE_CHECKING:
    from str_lightning.body.smpl import BodyModel

JointSource = Literal["h36m", "spin"]
MetricName = Literal["mpjpe", "pa_mpjpe", "accel", "mpvpe"]


@dataclass(frozen=True)
class EvaluationProtocol:
    """How one dataset is evaluated.

    ``joint_set``: the joint set compared (a name from :mod:`str_lightning.body.joints`).
    ``joint_source``: ``"h36m"`` = ``J_regressor_h36m`` on the predicted vertices, then
    ``joint_set``; ``"spin"`` = the predicted spin-49 joints converted to ``joint_set``.
    ``metrics``: the metric names reported (``mpvpe`` only where GT meshes exist).
    """

    name: str
    joint_set: str
    joint_source: JointSource
    metrics: tuple[MetricName, ...]

    @property
    def root(self) -> tuple[int, ...]:
        """Indices into ``joint_set`` whose mean is the root both pred and GT are aligned on."""
        return ROOTS[self.joint_set]


_JOINT_METRICS: tuple[MetricName, ...] = ("mpjpe", "pa_mpjpe", "accel")
PROTOCOLS: dict[str, EvaluationProtocol] = {
    p.name: p
    for p in (
        EvaluationProtocol("3dpw", "common14", "h36m", (*_JOINT_METRICS, "mpvpe")),
        EvaluationProtocol("mpii3d", "mpii3d17", "spin", _JOINT_METRICS),
        EvaluationProtocol("h36m", "common14", "h36m", _JOINT_METRICS),
        EvaluationProtocol("synthetic", "common14", "h36m", (*_JOINT_METRICS, "mpvpe")),
    )
}


def get_protocol(name: str) -> EvaluationProtocol:
    """The protocol called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown evaluation protocol {name!r}; known: {sorted(PROTOCOLS)}") from None


def build_metrics(protocol: EvaluationProtocol, prefix: str = "") -> MetricCollection:
    """A fresh ``MetricCollection`` of the protocol's metrics, keyed by metric name.

    Compute groups are off: they would merge metrics whose states happen to be equal after the
    first update (e.g. all zeros after a fully masked batch) although they measure different
    things.
    """
    factories = {
        "mpjpe": lambda: MPJPE(root=protocol.root),
        "pa_mpjpe": PAMPJPE,
        "accel": lambda: AccelError(root=protocol.root),
        "mpvpe": lambda: MPVPE(root=None),
    }
    metrics = {name: factories[name]() for name in protocol.metrics}
    return MetricCollection(metrics, prefix=prefix or None, compute_groups=False)


def predicted_joints(protocol: EvaluationProtocol, body_model: BodyModel, vertices: Tensor,
                     spin_joints: Tensor) -> Tensor:
    """The protocol's evaluation joints ``(..., J, 3)`` from a predicted body.

    ``vertices`` ``(..., 6890, 3)`` and ``spin_joints`` ``(..., 49, 3)`` are the body model's
    output for the predicted SMPL parameters; only the one the protocol needs is read.
    """
    if protocol.joint_source == "h36m":
        return body_model.eval_joints(vertices, protocol.joint_set)
    return convert_joints(spin_joints, "spin49", protocol.joint_set)


def target_joints(protocol: EvaluationProtocol, joints: Tensor, joint_format: str) -> Tensor:
    """Ground-truth joints ``(..., J_src, 3)`` in set ``joint_format`` to the protocol's set.

    Raises ``ValueError`` when ``joint_format`` lacks one of the protocol's joints (a zero-filled
    joint would silently enter the error).
    """
    dst_index, _ = conversion_indices(joint_format, protocol.joint_set)
    wanted = joint_names(protocol.joint_set)
    if len(dst_index) != len(wanted):
        missing = sorted(set(wanted) - {wanted[i] for i in dst_index})
        raise ValueError(f"protocol {protocol.name!r} needs {protocol.joint_set} joints, but "
                         f"ground truth in format {joint_format!r} lacks {missing}")
    return convert_joints(joints, joint_format, protocol.joint_set)


def update_metrics(metrics: MetricCollection, pred_joints: Tensor, target_joints: Tensor,
                   valid: Tensor | None = None, pred_vertices: Tensor | None = None,
                   target_vertices: Tensor | None = None) -> None:
    """Update every metric of ``metrics`` with whole sequences, each with the input it needs.

    Joints ``(T, J, 3)`` with ``valid`` ``(T,)`` for one sequence, or ``(B, T, J, 3)`` with
    ``valid`` ``(B, T)`` for padded sequences; vertices likewise with ``V`` points. Frame metrics
    see every frame; :class:`~str_lightning.evaluation.metrics.AccelError` sees the sequences.
    """
    for name, metric in metrics.items(keep_base=True, copy_state=False):
        if isinstance(metric, AccelError):
            metric.update(pred_joints, target_joints, valid)
        elif isinstance(metric, MPVPE):
            if pred_vertices is None or target_vertices is None:
                raise ValueError(f"metric {name!r} needs pred_vertices and target_vertices")
            _update_frames(metric, pred_vertices, target_vertices, valid)
        else:
            _update_frames(metric, pred_joints, target_joints, valid)


def _update_frames(metric: Metric, pred: Tensor, target: Tensor, valid: Tensor | None) -> None:
    """Per-frame update after flattening any leading sequence axes into one frame axis."""
    flat_valid = None if valid is None else valid.reshape(-1)
    metric.update(pred.reshape(-1, *pred.shape[-2:]), target.reshape(-1, *target.shape[-2:]),
                  flat_valid)
