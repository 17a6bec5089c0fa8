"""VIBE-like temporal encoder and motion discriminator (Kocabas et al., CVPR 2020).

Parameter names equal those of the released VIBE code (``TemporalEncoder`` and
``MotionDiscriminator``), so released checkpoints load strictly (see ``released.py``).
"""

from __future__ import annotations

from torch import Tensor, nn

from str_lightning.nets.blocks import AttentionPooling, GRUBlock
from str_lightning.nets.gru import GRU
from str_lightning.nets.interface import EncoderOutput, check_window


class VIBEEncoder(GRUBlock):
    """Uni-GRU, ReLU, Linear(hidden, D), plus the input feature (residual); every frame.

    ``forward`` returns ``(B, T, D)``, one feature per input frame; ``auxiliary`` is always
    empty. Paper dimensions (the defaults) give 17,840,128 trainable parameters.
    """

    target_frames = "all"

    def __init__(self, feature_dim: int = 2048, seq_len: int = 16, hidden_size: int = 1024,
                 num_layers: int = 2):
        super().__init__(feature_dim, hidden_size, num_layers)
        self.feature_dim = feature_dim
        self.seq_len = seq_len

    def forward(self, features: Tensor, train: bool = False) -> EncoderOutput:
        check_window(features, self.seq_len, self.feature_dim, "VIBEEncoder")
        return EncoderOutput(super().forward(features) + features)


class MotionDiscriminator(nn.Module):
    """VIBE's motion discriminator: body pose sequence ``(B, T, 69)`` -> realness ``(B, 1)``.

    The input is the axis-angle SMPL pose without the global orientation (joints 1..23).
    Uni-GRU (2 x 1024), self-attention pooling over time (3 layers, tanh, dropout 0.2, also on
    the logits), then Linear(hidden, 1). No spectral norm (VIBE's released configuration).
    Paper dimensions (the defaults) give 11,762,690 trainable parameters.
    """

    def __init__(self, input_size: int = 69, hidden_size: int = 1024, num_layers: int = 2,
                 attention_size: int = 1024, attention_layers: int = 3,
                 attention_dropout: float = 0.2, output_size: int = 1):
        super().__init__()
        self.input_size = input_size
        self.gru = GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.attention = AttentionPooling(hidden_size, attention_size, attention_layers,
                                          attention_dropout)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, body_pose: Tensor) -> Tensor:
        if body_pose.dim() != 3 or body_pose.shape[-1] != self.input_size:
            raise ValueError(f"MotionDiscriminator expects body pose of shape "
                             f"(B, T, {self.input_size}), got {tuple(body_pose.shape)}")
        hidden, _ = self.gru(body_pose)
        return self.fc(self.attention(hidden))
