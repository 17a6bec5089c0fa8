"""TCMR-like temporal encoder (Choi et al., CVPR 2021).

Parameter names equal those of ``TemporalEncoder`` in the released TCMR code, so the
``encoder.*`` part of a released checkpoint loads strictly (see ``released.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from str_lightning.nets.blocks import Integration
from str_lightning.nets.gru import GRU
from str_lightning.nets.interface import (
    EncoderOutput,
    check_middle_window_length,
    check_window,
    middle_index,
)


class TCMREncoder(nn.Module):
    """Three GRU branches around the middle frame, fused by TCMR's TemporalAttention.

    - ``cur``: bidirectional GRU over all T frames, output at ``mid = T // 2``, ReLU, Linear.
    - ``bef`` (past): uni-GRU over frames ``0..mid-1``, last step, ReLU, Linear.
    - ``aft`` (future): uni-GRU over frames ``T-1..mid+1`` (reversed), last step, ReLU, Linear.
    - integrated = TemporalAttention(bef, cur, aft) (tanh, logits bounded by tanh).
    No residual to the input feature. ``forward`` returns the integrated middle-frame feature
    ``(B, D)``; in train mode ``auxiliary = {"past": bef, "future": aft}``, all three being
    supervised with the middle frame's target (TCMR's L_past + L_future + L_integrated).
    Paper dimensions (the defaults) give 78,437,891 trainable parameters.
    """

    target_frames = "middle"

    def __init__(self, feature_dim: int = 2048, seq_len: int = 16, hidden_size: int = 1024,
                 num_layers: int = 2, attention_hidden_size: int = 256):
        super().__init__()
        check_middle_window_length(seq_len, "TCMREncoder")
        self.feature_dim = feature_dim
        self.seq_len = seq_len
        self.gru_cur = GRU(feature_dim, hidden_size, num_layers=num_layers,
                           bidirectional=True, batch_first=True)
        self.gru_bef = GRU(feature_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.gru_aft = GRU(feature_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.linear_cur = nn.Linear(2 * hidden_size, feature_dim)
        self.linear_bef = nn.Linear(hidden_size, feature_dim)
        self.linear_aft = nn.Linear(hidden_size, feature_dim)
        self.attention = Integration(3, feature_dim, attention_hidden_size,
                                     activation="tanh", bound_logits=True)

    def forward(self, features: Tensor, train: bool = False) -> EncoderOutput:
        check_window(features, self.seq_len, self.feature_dim, "TCMREncoder")
        mid = middle_index(self.seq_len)
        current, _ = self.gru_cur(features)
        past, _ = self.gru_bef(features[:, :mid])
        future, _ = self.gru_aft(features[:, mid + 1:].flip(1))
        current = self.linear_cur(torch.relu(current[:, mid]))
        past = self.linear_bef(torch.relu(past[:, -1]))
        future = self.linear_aft(torch.relu(future[:, -1]))
        integrated = self.attention(torch.stack((past, current, future), dim=1))
        auxiliary = {"past": past, "future": future} if train else {}
        return EncoderOutput(integrated, auxiliary)
