"""The single-frame control: the regressor sees one frame's feature, no temporal context.

It answers whether temporal modelling helps at all: trained and evaluated exactly like STR (same
windows, loss, optimizer and budget, same whole-sequence inference), it only ever reads the
middle frame of each window.
"""

from __future__ import annotations

from torch import Tensor, nn

from str_lightning.nets.interface import EncoderOutput, check_window, middle_index


class SingleFrameEncoder(nn.Module):
    """The middle frame's feature, optionally through a per-frame residual MLP: ``(B, T, D) -> (B, D)``.

    - ``hidden_size=0``: identity, no parameters; the regressor gets the frame's feature as is
      (a per-frame regressor like SPIN's).
    - ``hidden_size=H > 0``: ``F[mid] + Linear(H, D)(ReLU(Linear(D, H)(F[mid])))``, ``2 D H + H + D``
      parameters: the same feature size for the regressor and a trainable per-frame layer like
      the temporal encoders' output layers, so a gain of a temporal encoder over this control
      is due to the other frames, not to an extra layer.

    The target is the middle frame, as for STR and TCMR-like: one supervised frame per window,
    so the loss and the number of supervised frames per step equal STR's. ``auxiliary`` is
    always empty.
    """

    target_frames = "middle"

    def __init__(self, feature_dim: int = 2048, seq_len: int = 16, hidden_size: int = 0):
        super().__init__()
        if hidden_size < 0:
            raise ValueError(f"SingleFrameEncoder: hidden_size must be >= 0 (0 = identity), "
                             f"got {hidden_size}")
        self.feature_dim = feature_dim
        self.seq_len = seq_len
        self.mlp = (nn.Sequential(nn.Linear(feature_dim, hidden_size), nn.ReLU(),
                                  nn.Linear(hidden_size, feature_dim)) if hidden_size else None)

    def forward(self, features: Tensor, train: bool = False) -> EncoderOutput:
        check_window(features, self.seq_len, self.feature_dim, "SingleFrameEncoder")
        frame = features[:, middle_index(self.seq_len)]
        return EncoderOutput(frame if self.mlp is None else frame + self.mlp(frame))
