"""Evaluation: per-dataset protocols and whole-sequence inference (docs/evaluation.md)."""

from str_lightning.evaluation.inference import EDGE_MODES, EdgeMode, predict_sequence
from str_lightning.evaluation.protocols import (
    PROTOCOLS,
    EvaluationProtocol,
    build_metrics,
    get_protocol,
    predicted_joints,
    target_joints,
    update_metrics,
)

__all__ = [
    "EDGE_MODES",
    "PROTOCOLS",
    "EdgeMode",
    "EvaluationProtocol",
    "build_metrics",
    "get_protocol",
    "predict_sequence",
    "predicted_joints",
    "target_joints",
    "update_metrics",
]
