"""STR: Spatio-temporal Tendency Reasoning (Zhang et al., BMVC 2022), first public implementation.

Every reading of the paper made here is written down, with the alternatives, in docs/str.md.
Symbols: B batch, T window length (``seq_len``), D feature size, H GRU hidden size,
``mid = T // 2`` the target frame. With ``supervise_frames="all"`` the three tendency branches
and Z are computed at every frame in training (``(B, T, D)``); evaluation still reads ``mid``.

    F (B,T,D) ──┬─ TTR ────────────── F_tr[mid]  (B,D) ┐
                ├─ STE time ───────── STEF1[mid] (B,D) ├─ Integration ─ F_STR (B,D) ┐
                ├─ STE frequency ──── STEF2[mid] (B,D) ┘                            │
                ├─ GRU_past(F[:mid]) ─ F_c1 (B,mid,D) ┐ self-integration          ├ Integration ─ Z
                └─ GRU_future(F[mid+1:] reversed) ─ F_c2 ┘ + cross-integration ─ F_SF, F_CF ┘
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional

from str_lightning.nets.blocks import GRUBlock, Integration
from str_lightning.nets.interface import (
    EncoderOutput,
    TargetFrames,
    check_middle_window_length,
    check_window,
    middle_index,
)

FreqFilter = Literal["learnable", "identity", "highpass"]
TTRFusion = Literal["after_gru", "before_gru"]
STETimeExcitation = Literal["global", "per_frame"]

TTR_FRAGMENTS = 4


class TemporalTendencyReasoning(nn.Module):
    """TTR (paper eq. 1-2): ``(B, T, D) -> F_tr``, at one target frame ``(B, D)`` or, with
    ``target_index=None``, at every frame ``(B, T, D)``.

    F is split along time into 4 fragments of ``T/4`` frames; ``F1o = F1`` and, for i = 2..4,
    ``Fio = GRU_i(Fi) + F(i-1)o`` (``fusion="after_gru"``, the equation as printed) or
    ``Fio = GRU_i(Fi + F(i-1)o)`` (``"before_gru"``, Res2Net-style); ``F_tr = F + concat(F1o..F4o)``.
    The sum is frame-aligned, so ``F_tr[target]`` depends only on the fragments up to the
    target's: only their GRUs are built. With causal GRU blocks (``bidirectional=False``) each
    is also run only on the frames up to the target's offset in its fragment; the output equals
    the full equation's. For ``target = T/2`` that is GRU_2 and GRU_3, each run on the *first*
    frame of its fragment from a zero state, so ``F_tr[T/2] = F[T/2] + GRU_3(F[T/2]) +
    GRU_2(F[T/4]) + F[0]`` and the GRUs' recurrent weights ``weight_hh_*`` cannot influence it
    (docs/str.md, "TTR"). Bidirectional blocks run over whole fragments: their backward
    direction carries every frame of fragments 2 and 3 to ``T/2``.
    """

    def __init__(self, feature_dim: int, seq_len: int, hidden_size: int, num_layers: int,
                 target_index: int | None, fusion: TTRFusion = "after_gru",
                 bidirectional: bool = False):
        super().__init__()
        if seq_len % TTR_FRAGMENTS:
            raise ValueError(f"TTR splits the window into {TTR_FRAGMENTS} equal fragments: "
                             f"seq_len must be divisible by {TTR_FRAGMENTS}, got T={seq_len}")
        if fusion not in ("after_gru", "before_gru"):
            raise ValueError(f"ttr_fusion must be 'after_gru' or 'before_gru', got {fusion!r}")
        self.fragment_len = seq_len // TTR_FRAGMENTS
        self.target_index = target_index
        self.fusion = fusion
        if target_index is None:
            num_grus, self.frames_run = TTR_FRAGMENTS - 1, self.fragment_len
        else:
            num_grus = target_index // self.fragment_len
            self.frames_run = (self.fragment_len if bidirectional
                               else target_index % self.fragment_len + 1)
        self.grus = nn.ModuleList(
            GRUBlock(feature_dim, hidden_size, num_layers, bidirectional) for _ in range(num_grus)
        )

    def forward(self, features: Tensor) -> Tensor:
        length = self.fragment_len
        fragments = features[:, : (len(self.grus) + 1) * length].split(length, dim=1)
        outputs = [fragments[0][:, : self.frames_run]]
        for gru, fragment in zip(self.grus, fragments[1:]):
            current = fragment[:, : self.frames_run]
            if self.fusion == "after_gru":
                outputs.append(gru(current) + outputs[-1])
            else:
                outputs.append(gru(current + outputs[-1]))
        if self.target_index is None:
            return features + torch.cat(outputs, dim=1)
        return features[:, self.target_index] + outputs[-1][:, self.target_index % length]


class TimeDomainEnhancement(nn.Module):
    """STE, time domain (paper eq. 3-4): ``(B, T, D) -> STEF1``, at the target frame ``(B, D)``
    or, with ``target_index=None``, at every frame ``(B, T, D)``.

    ``S = Conv1d(D, D, 3, padding 1)(F)`` over time; ``M1(t) = (S(t+1) - S(t)) - (F(t+1) - F(t))``
    for frames t = 0..T-2; ``STEF1(t) = GRU(F)(t) * A1`` channel-wise, where
    - ``excitation="global"``: ``A1 = sigmoid(mean_t M1)`` (B, D), the paper's "global average
      pooling", the same for every frame;
    - ``excitation="per_frame"``: ``A1(t) = sigmoid(M1(t))``; the last frame, which has no next
      one, uses ``M1(T-2)``.
    The convolution has no bias: a bias is constant over time and cancels in S(t+1) - S(t).
    """

    def __init__(self, feature_dim: int, hidden_size: int, num_layers: int,
                 target_index: int | None, excitation: STETimeExcitation = "global"):
        super().__init__()
        if excitation not in ("global", "per_frame"):
            raise ValueError(f"ste_time_excitation must be 'global' or 'per_frame', "
                             f"got {excitation!r}")
        self.target_index = target_index
        self.excitation_mode = excitation
        self.conv = nn.Conv1d(feature_dim, feature_dim, kernel_size=3, padding=1, bias=False)
        self.gru = GRUBlock(feature_dim, hidden_size, num_layers)

    def excitation(self, features: Tensor) -> Tensor:
        """The spatial offset weight map A1 in (0, 1): ``(B, D)``, or ``(B, T, D)`` when it is
        per frame and computed at every frame."""
        if self.excitation_mode == "global":
            return self._mean_excitation(features)
        length = features.shape[1]
        if self.target_index is not None:
            frame = min(self.target_index, length - 2)
            return torch.sigmoid(self.offsets(features, frame, frame + 1)[:, 0])
        offsets = self.offsets(features, 0, length - 1)
        return torch.sigmoid(torch.cat((offsets, offsets[:, -1:]), dim=1))

    def offsets(self, features: Tensor, first: int, last: int) -> Tensor:
        """``M1(t)`` for frames ``t = first..last-1`` (``last <= T-1``), ``(B, last - first, D)``.

        Only ``S(first..last)`` is convolved, from the zero-padded frames ``first-1..last+1``.
        """
        padded = functional.pad(features.transpose(1, 2), (1, 1))[..., first:last + 3]
        spatial = functional.conv1d(padded, self.conv.weight).transpose(1, 2)
        return spatial.diff(dim=1) - features[:, first:last + 1].diff(dim=1)

    def _mean_excitation(self, features: Tensor) -> Tensor:
        """``sigmoid(mean_t M1)``, ``(B, D)``.

        ``mean_t M1`` telescopes to ``((S(T) - S(1)) - (F(T) - F(1))) / (T - 1)``, and
        ``S(T) - S(1) = W_0 F(T-1) + W_1 (F(T) - F(1)) - W_2 F(2)`` for the kernel taps
        ``W_k`` (zero padding): one matrix product instead of the convolution over every frame.
        """
        length = features.shape[1]
        taps = torch.stack((features[:, -2], features[:, -1] - features[:, 0], -features[:, 1]),
                           dim=-1)  # (B, D, 3), the layout of the conv weight (D, D, 3)
        spatial_change = functional.linear(taps.flatten(1), self.conv.weight.flatten(1))
        feature_change = features[:, -1] - features[:, 0]
        return torch.sigmoid((spatial_change - feature_change) / (length - 1))

    def forward(self, features: Tensor) -> Tensor:
        if self.target_index is None:
            temporal = self.gru(features)
        else:
            temporal = self.gru(features[:, : self.target_index + 1])[:, -1]
        weights = self.excitation(features)
        if weights.dim() < temporal.dim():
            weights = weights.unsqueeze(1)
        return temporal * weights


class SpectralFilter(nn.Module):
    """``F_fft = irfft(W * rfft(F))`` along time, per channel: ``(B, T, D) -> (B, T, D)``.

    - ``identity``: W = 1, the paper's literal FFT -> IFFT (the identity map up to rounding).
    - ``learnable``: W complex per (frequency bin, channel), initialised to 1. The imaginary
      parts of the DC bin (and of the Nyquist bin for even T) cannot reach a real output, so
      they are not parameters: exactly T * D real parameters, i.e. a learnable per-channel
      circular convolution over the window.
    - ``highpass``: fixed W zeroing the lowest ``highpass_bins`` bins (1 = remove the mean).
    The transform runs in float32 whatever the input dtype (half-precision FFTs are limited).
    """

    def __init__(self, feature_dim: int, seq_len: int, mode: FreqFilter = "learnable",
                 highpass_bins: int = 1):
        super().__init__()
        self.seq_len = seq_len
        self.mode = mode
        bins = seq_len // 2 + 1
        if mode == "learnable":
            self.num_complex_bins = bins - 1 - (seq_len % 2 == 0)
            self.real = nn.Parameter(torch.empty(bins, feature_dim))
            self.imag = nn.Parameter(torch.empty(max(self.num_complex_bins, 0), feature_dim))
            self.reset_parameters()
        elif mode == "highpass":
            if not 0 < highpass_bins < bins:
                raise ValueError(f"highpass_bins must be in [1, {bins - 1}] for T={seq_len}, "
                                 f"got {highpass_bins}")
            mask = torch.ones(bins, 1)
            mask[:highpass_bins] = 0.0
            self.register_buffer("mask", mask, persistent=False)
        elif mode != "identity":
            raise ValueError(f"freq_filter must be 'learnable', 'identity' or 'highpass', "
                             f"got {mode!r}")

    def reset_parameters(self) -> None:
        """The learnable filter starts as the identity (W = 1)."""
        if self.mode == "learnable":
            nn.init.ones_(self.real)
            nn.init.zeros_(self.imag)

    def response(self) -> Tensor:
        """The filter W, ``(T // 2 + 1, D)`` complex or ``(T // 2 + 1, 1)`` real."""
        if self.mode == "highpass":
            return self.mask
        bins = self.real.shape[0]
        imag = functional.pad(self.imag, (0, 0, 1, bins - 1 - self.imag.shape[0]))
        return torch.complex(self.real, imag)

    def forward(self, features: Tensor) -> Tensor:
        spectrum = torch.fft.rfft(features.float(), dim=1)
        if self.mode != "identity":
            spectrum = spectrum * self.response()
        return torch.fft.irfft(spectrum, n=self.seq_len, dim=1).to(features.dtype)


class FrequencyDomainEnhancement(nn.Module):
    """STE, frequency domain (paper eq. 5): ``(B, T, D) -> STEF2``, at the target frame
    ``(B, D)`` or, with ``target_index=None``, at every frame ``(B, T, D)``.

    ``M2 = GRU(F) - F``; ``A2 = sigmoid(mean_t M2)``; ``STEF2 = GRU(F_fft) * A2``, with one GRU
    block for both passes (the paper sends F and F_fft "to the GRU").
    """

    def __init__(self, feature_dim: int, seq_len: int, hidden_size: int, num_layers: int,
                 target_index: int | None, freq_filter: FreqFilter = "learnable",
                 highpass_bins: int = 1):
        super().__init__()
        self.target_index = target_index
        self.filter = SpectralFilter(feature_dim, seq_len, freq_filter, highpass_bins)
        self.gru = GRUBlock(feature_dim, hidden_size, num_layers)

    def forward(self, features: Tensor) -> Tensor:
        batch = features.shape[0]
        both = self.gru(torch.cat((features, self.filter(features)), dim=0))
        excitation = torch.sigmoid((both[:batch] - features).mean(dim=1))
        if self.target_index is None:
            return both[batch:] * excitation.unsqueeze(1)
        return both[batch:, self.target_index] * excitation


class STREncoder(nn.Module):
    """The STR temporal encoder; output Z for the middle frame ``T // 2``, ``(B, D)``.

    Train mode with ``aux_outputs`` adds the other inputs of Z to ``auxiliary``
    (``self_fused`` = F_SF and ``cross_fused`` = F_CF; ``past_integrated`` / ``future_integrated``
    when cross-integration is off), ``(B, D)``, to be regressed and supervised against the middle
    frame like TCMR's past/future.

    Readings of the paper (docs/str.md, "Readings as switches"); the defaults are the first:
    - ``supervise_frames``: ``"middle"`` or ``"all"``. With ``"all"``, train mode returns
      ``Z(t) = Integration(F_SF, F_STR(t), F_CF)`` for every frame, ``(B, T, D)`` (TTR builds
      its 4th GRU; every branch runs over the whole window); eval mode still returns Z at the
      middle frame, so ``target_frames`` (what inference predicts) stays ``"middle"``.
    - ``ttr_bidirectional``: bidirectional GRU blocks in TTR.
    - ``ste_time_excitation``: ``"global"`` or ``"per_frame"`` STE time-domain weight map A1.

    Ablation switches (paper Table 2): a disabled branch builds no parameters and leaves the
    Integration that consumed it (k shrinks; an Integration of one input is that input).
    - ``use_ttr``, ``use_ste_time``, ``use_ste_freq``: branches of F_STR; ``use_ste=False``
      turns off both STE branches. With all three off, F_STR = F[mid].
    - ``use_self_integration=False``: each half is summarised by its plain temporal mean
      instead of the learned attention pooling (the cross phase is unchanged).
    - ``use_cross_integration=False``: F_SF and F_CF are not built; Z integrates the two
      self-integrated halves with F_STR.
    Paper dimensions (the defaults) give 124,844,825 trainable parameters (table in docs/str.md).
    """

    target_frames = "middle"

    def __init__(
        self,
        feature_dim: int = 2048,
        seq_len: int = 16,
        hidden_size: int = 1024,
        num_layers: int = 2,
        integration_hidden_size: int = 256,
        self_integration_rounds: int = 1,
        freq_filter: FreqFilter = "learnable",
        highpass_bins: int = 1,
        ttr_fusion: TTRFusion = "after_gru",
        ttr_bidirectional: bool = False,
        ste_time_excitation: STETimeExcitation = "global",
        supervise_frames: TargetFrames = "middle",
        aux_outputs: bool = True,
        use_ttr: bool = True,
        use_ste: bool = True,
        use_ste_time: bool = True,
        use_ste_freq: bool = True,
        use_self_integration: bool = True,
        use_cross_integration: bool = True,
    ):
        super().__init__()
        check_middle_window_length(seq_len, "STREncoder")
        if self_integration_rounds < 1:
            raise ValueError(f"self_integration_rounds must be >= 1, got {self_integration_rounds}")
        if supervise_frames not in ("middle", "all"):
            raise ValueError(f"supervise_frames must be 'middle' or 'all', got {supervise_frames!r}")
        self.feature_dim = feature_dim
        self.seq_len = seq_len
        self.aux_outputs = aux_outputs
        self.self_integration_rounds = self_integration_rounds
        self.use_cross_integration = use_cross_integration
        self.supervise_frames = supervise_frames
        mid = middle_index(seq_len)
        target = None if supervise_frames == "all" else mid
        gru_sizes = (hidden_size, num_layers)

        def integration(num_inputs: int) -> Integration | None:
            if num_inputs < 2:
                return None
            return Integration(num_inputs, feature_dim, integration_hidden_size)

        self.ttr = (TemporalTendencyReasoning(feature_dim, seq_len, *gru_sizes, target, ttr_fusion,
                                              ttr_bidirectional)
                    if use_ttr else None)
        self.ste_time = (TimeDomainEnhancement(feature_dim, *gru_sizes, target, ste_time_excitation)
                         if use_ste and use_ste_time else None)
        self.ste_freq = (FrequencyDomainEnhancement(feature_dim, seq_len, *gru_sizes, target,
                                                    freq_filter, highpass_bins)
                         if use_ste and use_ste_freq else None)
        self.tendency_integration = integration(len(self._tendency_branches()))

        self.past_gru = GRUBlock(feature_dim, *gru_sizes)
        self.future_gru = GRUBlock(feature_dim, *gru_sizes)
        self.past_pooling = integration(mid) if use_self_integration else None
        self.future_pooling = integration(seq_len - mid - 1) if use_self_integration else None
        self.self_fusion = integration(2) if use_cross_integration else None
        self.cross_fusion = integration(2) if use_cross_integration else None
        self.final_integration = integration(3)

    def _tendency_branches(self) -> list[nn.Module]:
        return [m for m in (self.ttr, self.ste_time, self.ste_freq) if m is not None]

    def tendency_features(self, features: Tensor) -> Tensor:
        """F_STR (paper eq. 6) at the middle frame, ``(B, D)``, or with
        ``supervise_frames="all"`` at every frame, ``(B, T, D)``."""
        branches = [branch(features) for branch in self._tendency_branches()]
        if not branches:
            return features if self.supervise_frames == "all" else features[:, middle_index(self.seq_len)]
        if self.tendency_integration is None:
            return branches[0]
        return self.tendency_integration(torch.stack(branches, dim=-2))

    def _self_integrate(self, half: Tensor, pooling: Integration | None) -> Tensor:
        """Algorithm 1, phase 1: N rounds of attention pooling over the frames of a half;
        round r adds the summary of round r-1 to every frame first."""
        if pooling is None:
            return half.mean(dim=1)
        summary = pooling(half)
        for _ in range(self.self_integration_rounds - 1):
            summary = pooling(half + summary.unsqueeze(1))
        return summary

    def strategy_features(self, features: Tensor) -> dict[str, Tensor]:
        """The integration strategies (Algorithm 1): the inputs of Z besides F_STR, by name."""
        mid = middle_index(self.seq_len)
        past = self.past_gru(features[:, :mid])
        future = self.future_gru(features[:, mid + 1:].flip(1))
        past_summary = self._self_integrate(past, self.past_pooling)
        future_summary = self._self_integrate(future, self.future_pooling)
        if not self.use_cross_integration:
            return {"past_integrated": past_summary, "future_integrated": future_summary}
        return {
            "self_fused": self.self_fusion(torch.stack((past_summary, future_summary), dim=1)),
            "cross_fused": self.cross_fusion(torch.stack((past[:, -1], future[:, -1]), dim=1)),
        }

    def forward(self, features: Tensor, train: bool = False) -> EncoderOutput:
        check_window(features, self.seq_len, self.feature_dim, "STREncoder")
        strategy = self.strategy_features(features)
        before, after = strategy.values()
        tendency = self.tendency_features(features)
        if self.supervise_frames == "all" and not train:
            tendency = tendency[:, middle_index(self.seq_len)]  # evaluation: the middle frame
        if tendency.dim() == 3:  # F_SF and F_CF are the same for every frame
            before, after = (f.unsqueeze(1).expand_as(tendency) for f in (before, after))
        fused = self.final_integration(torch.stack((before, tendency, after), dim=-2))
        return EncoderOutput(fused, strategy if train and self.aux_outputs else {})
