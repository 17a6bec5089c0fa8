"""Whole-sequence inference for every temporal encoder (docs/evaluation.md).

One sequence of per-frame features ``(N, D)`` goes in; exactly one prediction per frame comes
out, in frame order, whatever N (sequences shorter than the window length T included).

Middle-frame encoders (``target_frames == "middle"``): frame ``i`` is predicted from the window
whose middle index ``T // 2`` sits on ``i``, i.e. frames ``i - T//2 .. i - T//2 + T - 1``
(stride 1). Near the sequence ends that window leaves ``[0, N)``; ``edge_mode`` says what fills it:

- ``"replicate"`` (default): each out-of-range frame is replaced by the nearest real frame (edge
  replication), so the in-range part of the window keeps its real temporal context.
- ``"tcmr"``: TCMR's static repeat. A frame whose window would leave ``[0, N)`` (the
  first ``T//2`` and the last ``T - 1 - T//2`` frames when ``N >= T``) is predicted from a
  window that repeats that one frame T times; every other frame from its real window. When
  ``N < T`` every window leaves ``[0, N)``, so every frame gets the static repeat.

All-frame encoders (``target_frames == "all"``): the sequence is cut into consecutive chunks
of T frames, ``[0, T), [T, 2T), ...``; the last chunk is filled up by repeating the last real
frame and the predictions for those padding frames are dropped. A causal encoder (VIBE's
uni-GRU) is thus unaffected by the padding. ``edge_mode`` does not apply (both modes behave
alike), since TCMR's static repeat is a rule for middle-frame windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

import torch
from torch import Tensor

from str_lightning.nets.interface import TemporalEncoder

EdgeMode = Literal["replicate", "tcmr"]
EDGE_MODES: tuple[str, ...] = ("replicate", "tcmr")
CPU_WINDOW_BATCH = 128
GPU_FRAMES_PER_WINDOW_BATCH = 1024
Predictions = Tensor | dict[str, Tensor]
WindowsPredictor = Callable[[TemporalEncoder, Callable[[Tensor], Predictions], Tensor], Predictions]


def middle_window_indices(num_frames: int, seq_len: int, edge_mode: EdgeMode = "replicate",
                          device: torch.device | str | None = None) -> Tensor:
    """Frame indices ``(N, T)`` of the window that predicts each frame (middle-frame encoders),
    made on ``device`` (default: the CPU)."""
    _check_edge_mode(edge_mode)
    mid = seq_len // 2
    padded = torch.arange(-mid, num_frames + seq_len - 1 - mid, device=device).clamp(0, num_frames - 1)
    windows = padded.unfold(0, seq_len, 1)
    if edge_mode == "tcmr":
        frames = torch.arange(num_frames, device=device)
        leaves_sequence = (frames - mid < 0) | (frames - mid + seq_len > num_frames)
        windows = torch.where(leaves_sequence[:, None], frames[:, None], windows)
    return windows


def chunk_indices(num_frames: int, seq_len: int, device: torch.device | str | None = None
                  ) -> Tensor:
    """Frame indices ``(ceil(N / T), T)`` of consecutive chunks, the last one padded by its end,
    made on ``device`` (default: the CPU)."""
    num_chunks = math.ceil(num_frames / seq_len)
    frames = torch.arange(num_chunks * seq_len, device=device)
    return frames.clamp(max=num_frames - 1).view(num_chunks, seq_len)


def default_window_batch(encoder: TemporalEncoder, device: torch.device) -> int:
    """Windows per encoder call when none is set: ``CPU_WINDOW_BATCH`` on the CPU; on any other
    device (a GPU) those predicting ``GPU_FRAMES_PER_WINDOW_BATCH`` frames (a middle-frame
    encoder predicts 1 frame per window, an all-frame one T), enough to keep a GPU busy. What a
    batch costs in memory is in docs/evaluation.md."""
    if device.type == "cpu":
        return CPU_WINDOW_BATCH
    frames_per_window = encoder.seq_len if encoder.target_frames == "all" else 1
    return max(1, GPU_FRAMES_PER_WINDOW_BATCH // frames_per_window)


def predict_sequence(encoder: TemporalEncoder, regress: Callable[[Tensor], Predictions],
                     features: Tensor, edge_mode: EdgeMode = "replicate",
                     batch_size: int | None = None,
                     windows_predictor: WindowsPredictor | None = None) -> Predictions:
    """Predictions for every frame of one sequence, in order (see the module docstring).

    ``encoder`` follows :class:`~str_lightning.nets.interface.TemporalEncoder` and is called
    with ``train=False`` under ``torch.no_grad()`` (its train/eval mode is left as the caller
    set it). ``regress`` maps target features ``(M, D')`` to a tensor ``(M, ...)`` or a dict of
    such tensors. ``features`` ``(N, D)``, ``N >= 1``. Windows go through the encoder
    ``batch_size`` at a time (default :func:`default_window_batch`), which bounds memory,
    each batch through ``windows_predictor`` (default :func:`predict_windows`; its compiled
    twin, say).
    Returns what ``regress`` returns, with ``M = N``: one row per frame, frame ``i`` at row ``i``.
    """
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"predict_sequence expects one sequence of features (N, D) with N >= 1, "
                         f"got shape {tuple(features.shape)}")
    if batch_size is None:
        batch_size = default_window_batch(encoder, features.device)
    if batch_size < 1:
        raise ValueError(f"predict_sequence: batch_size must be >= 1, got {batch_size}")
    num_frames, seq_len = features.shape[0], encoder.seq_len
    if encoder.target_frames == "middle":
        index = middle_window_indices(num_frames, seq_len, edge_mode, features.device)
    elif encoder.target_frames == "all":
        _check_edge_mode(edge_mode)
        index = chunk_indices(num_frames, seq_len, features.device)
    else:
        raise ValueError(f"encoder {type(encoder).__name__} has target_frames="
                         f"{encoder.target_frames!r}; expected 'middle' or 'all'")
    predict = windows_predictor or predict_windows
    with torch.no_grad():
        parts = [predict(encoder, regress, features[index[start:start + batch_size]])
                 for start in range(0, index.shape[0], batch_size)]
    return _take_rows(_concatenate(parts), num_frames)


def predict_windows(encoder: TemporalEncoder, regress: Callable[[Tensor], Predictions],
                    windows: Tensor) -> Predictions:
    """Predictions for the target frames of a batch of windows ``(B, T, D)``, in frame order."""
    target = encoder(windows, train=False).features
    expected = windows.shape[:1] if encoder.target_frames == "middle" else windows.shape[:2]
    if target.shape[:len(expected)] != expected or target.dim() != len(expected) + 1:
        raise ValueError(f"encoder {type(encoder).__name__} (target_frames="
                         f"{encoder.target_frames!r}) returned features of shape "
                         f"{tuple(target.shape)} for windows {tuple(windows.shape)}")
    target = target.reshape(-1, target.shape[-1])
    predictions = regress(target)
    for name, value in _items(predictions):
        if value.shape[0] != target.shape[0]:
            raise ValueError(f"regress returned {name} with {value.shape[0]} rows for "
                             f"{target.shape[0]} target frames")
    return predictions


def _items(predictions: Predictions) -> list[tuple[str, Tensor]]:
    if isinstance(predictions, Tensor):
        return [("predictions", predictions)]
    if isinstance(predictions, Mapping):
        return list(predictions.items())
    raise TypeError(f"regress must return a Tensor or a dict of Tensors, "
                    f"got {type(predictions).__name__}")


def _concatenate(parts: list[Predictions]) -> Predictions:
    if isinstance(parts[0], Tensor):
        return torch.cat(parts)
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def _take_rows(predictions: Predictions, num_rows: int) -> Predictions:
    if isinstance(predictions, Tensor):
        return predictions[:num_rows]
    return {key: value[:num_rows] for key, value in predictions.items()}


def _check_edge_mode(edge_mode: str) -> None:
    if edge_mode not in EDGE_MODES:
        raise ValueError(f"edge_mode must be one of {EDGE_MODES}, got {edge_mode!r}")
