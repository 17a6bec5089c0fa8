"""Building blocks shared by the encoders: the GRU block, the Integration network and
VIBE's self-attention pooling. Submodule names follow the released TCMR/VIBE code so that
their checkpoints load by name."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from str_lightning.nets.gru import GRU


class GRUBlock(nn.Module):
    """GRU, ReLU, Linear(hidden_size, feature_dim): ``(B, L, D) -> (B, L, D)``.

    VIBE's temporal encoder without its residual; the paper's "GRU" wherever it maps features
    to features. Uni-directional (causal) unless ``bidirectional``: then each layer also runs
    backwards in time and the Linear maps the two directions' ``2 * hidden_size`` outputs.
    """

    def __init__(self, feature_dim: int = 2048, hidden_size: int = 1024, num_layers: int = 2,
                 bidirectional: bool = False):
        super().__init__()
        self.gru = GRU(feature_dim, hidden_size, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional)
        self.linear = nn.Linear((1 + bidirectional) * hidden_size, feature_dim)

    def forward(self, sequence: Tensor) -> Tensor:
        hidden, _ = self.gru(sequence)
        return self.linear(torch.relu(hidden))


class Integration(nn.Module):
    """Softmax-weighted sum of ``num_inputs`` features: ``(..., k, D) -> (..., D)``.

    A shared Linear(D, hidden) embeds each input; the k embeddings are concatenated and an MLP
    Linear(k*hidden, hidden), act, Linear(hidden, hidden), act, Linear(hidden, k) scores them;
    softmax over k gives the weights. ``activation="tanh", bound_logits=True`` is TCMR's
    TemporalAttention (tanh also on the logits, so they lie in [-1, 1]); the default
    (ReLU, unbounded logits) is the paper's Integration network (STR §2.4).
    """

    def __init__(
        self,
        num_inputs: int,
        feature_dim: int = 2048,
        hidden_size: int = 256,
        activation: Literal["relu", "tanh"] = "relu",
        bound_logits: bool = False,
    ):
        super().__init__()
        if num_inputs < 2:
            raise ValueError(f"Integration needs at least 2 inputs, got num_inputs={num_inputs}")
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        self.num_inputs = num_inputs
        self.fc = nn.Linear(feature_dim, hidden_size)
        layers: list[nn.Module] = [
            nn.Linear(num_inputs * hidden_size, hidden_size), act(),
            nn.Linear(hidden_size, hidden_size), act(),
            nn.Linear(hidden_size, num_inputs),
        ]
        if bound_logits:
            layers.append(nn.Tanh())
        self.attention = nn.Sequential(*layers)

    def weights(self, inputs: Tensor) -> Tensor:
        """Softmax weights ``(..., k)`` of the inputs ``(..., k, D)``."""
        if inputs.shape[-2] != self.num_inputs:
            raise ValueError(f"Integration built for {self.num_inputs} inputs, got "
                             f"{inputs.shape[-2]} (inputs of shape {tuple(inputs.shape)})")
        embedded = self.fc(inputs).flatten(-2)
        return torch.softmax(self.attention(embedded), dim=-1)

    def forward(self, inputs: Tensor) -> Tensor:
        return (self.weights(inputs).unsqueeze(-1) * inputs).sum(-2)


def _init_vibe_attention_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.uniform_(module.weight, -0.1, 0.1)
        nn.init.constant_(module.bias, 0.01)


class AttentionPooling(nn.Module):
    """VIBE's SelfAttention: scores each step of ``(B, L, C)``, softmax over L, weighted sum
    ``-> (B, C)``.

    Scorer: ``num_layers - 1`` times [Linear, tanh, Dropout], then Linear(., 1), tanh, Dropout
    (VIBE applies dropout to the logits too). Linears start uniform(-0.1, 0.1), bias 0.01.
    The first Linear maps C to ``attention_size`` (VIBE requires ``attention_size == C``).
    """

    def __init__(self, input_size: int = 1024, attention_size: int = 1024, num_layers: int = 3,
                 dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        width = input_size
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, attention_size), nn.Tanh(), nn.Dropout(dropout)]
            width = attention_size
        layers += [nn.Linear(width, 1), nn.Tanh(), nn.Dropout(dropout)]
        self.attention = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.attention.apply(_init_vibe_attention_linear)

    def forward(self, sequence: Tensor) -> Tensor:
        scores = torch.softmax(self.attention(sequence).squeeze(-1), dim=-1)
        return (scores.unsqueeze(-1) * sequence).sum(1)
