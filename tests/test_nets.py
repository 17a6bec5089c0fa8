"""Temporal encoders (STR, TCMR-like, VIBE-like), the single-frame control and the motion
discriminator: exact parameter counts, shapes, gradients, ablation switches and the STR
components' equations."""

import pytest
import torch
from nets_helpers import (
    conv1d,
    gru_block,
    integration,
    str_branches,
    str_reading_total,
    str_total,
)

from str_lightning.nets import (
    GRUBlock,
    MotionDiscriminator,
    SingleFrameEncoder,
    STREncoder,
    TCMREncoder,
    VIBEEncoder,
)
from str_lightning.nets.str import (
    FrequencyDomainEnhancement,
    SpectralFilter,
    TemporalTendencyReasoning,
    TimeDomainEnhancement,
)

SMALL = {"feature_dim": 24, "hidden_size": 12, "num_layers": 2}
SMALL_ATT = 8  # Integration / TemporalAttention hidden size in small models
ENCODERS = {
    "str": lambda t: STREncoder(seq_len=t, integration_hidden_size=SMALL_ATT, **SMALL),
    "tcmr": lambda t: TCMREncoder(seq_len=t, attention_hidden_size=SMALL_ATT, **SMALL),
    "vibe": lambda t: VIBEEncoder(seq_len=t, **SMALL),
    "single_frame": lambda t: SingleFrameEncoder(SMALL["feature_dim"], t, SMALL["hidden_size"]),
}
ABLATIONS = ("use_ttr", "use_ste", "use_ste_time", "use_ste_freq", "use_self_integration",
             "use_cross_integration")
READINGS = {  # docs/str.md, "Readings as switches"
    "default": {},
    "all_frames": {"supervise_frames": "all"},
    "ttr_bidirectional": {"ttr_bidirectional": True},
    "ste_per_frame": {"ste_time_excitation": "per_frame"},
    "all_three": {"supervise_frames": "all", "ttr_bidirectional": True,
                  "ste_time_excitation": "per_frame"},
}


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def small_str(seq_len: int = 16, **kwargs) -> STREncoder:
    return STREncoder(seq_len=seq_len, integration_hidden_size=SMALL_ATT, **SMALL, **kwargs)


def window(batch: int, seq_len: int, dim: int = SMALL["feature_dim"], seed: int = 0):
    return torch.rand(batch, seq_len, dim, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- counts at paper dimensions


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(TCMREncoder, 78_437_891), (VIBEEncoder, 17_840_128), (MotionDiscriminator, 11_762_690),
     (STREncoder, str_total(2048, 16, 1024, 2, 256))],
)
def test_paper_dimension_parameter_counts(cls, expected):
    with torch.device("meta"):
        model = cls()
    assert trainable(model) == expected


def test_str_paper_count_is_the_documented_one():
    assert str_total(2048, 16, 1024, 2, 256) == 124_844_825


@pytest.mark.parametrize(("reading", "documented"), [
    ("default", 124_844_825), ("all_frames", 142_684_953), ("ttr_bidirectional", 173_103_897),
    ("ste_per_frame", 124_844_825), ("all_three", 215_073_561)])
def test_str_reading_paper_counts(reading, documented):
    with torch.device("meta"):
        model = STREncoder(**READINGS[reading])
    assert trainable(model) == str_reading_total(2048, 16, 1024, 2, 256, **READINGS[reading])
    assert trainable(model) == documented


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("seq_len", [8, 16, 32])
@pytest.mark.parametrize("batch", [1, 32])
def test_output_shapes_and_finiteness(name, seq_len, batch):
    encoder = ENCODERS[name](seq_len)
    features = window(batch, seq_len)
    dim = SMALL["feature_dim"]
    target = (batch, dim) if encoder.target_frames == "middle" else (batch, seq_len, dim)
    with torch.no_grad():
        evaluated = encoder(features, train=False)
        trained = encoder(features, train=True)
    assert evaluated.features.shape == target and evaluated.auxiliary == {}
    expected_aux = {"str": {"self_fused", "cross_fused"}, "tcmr": {"past", "future"},
                    "vibe": set(), "single_frame": set()}[name]
    assert set(trained.auxiliary) == expected_aux
    for tensor in (trained.features, *trained.auxiliary.values()):
        assert tensor.shape == target and torch.isfinite(tensor).all()
    assert torch.equal(trained.features, evaluated.features)
    assert encoder.seq_len == seq_len


@pytest.fixture(scope="module")
def paper_encoders():
    torch.manual_seed(0)
    return {"str": STREncoder(), "tcmr": TCMREncoder(), "vibe": VIBEEncoder()}


@pytest.mark.parametrize("name", ["str", "tcmr", "vibe"])
def test_paper_dimension_forward(paper_encoders, name):
    encoder = paper_encoders[name].eval()
    with torch.no_grad():
        out = encoder(window(2, 16, 2048), train=True)
    expected = (2, 2048) if name != "vibe" else (2, 16, 2048)
    assert out.features.shape == expected and torch.isfinite(out.features).all()
    assert all(aux.shape == expected for aux in out.auxiliary.values())


def test_wrong_window_shape_is_rejected_with_the_expected_shape():
    encoder = small_str()
    with pytest.raises(ValueError, match=r"\(B, 16, 24\).*got \(2, 15, 24\)"):
        encoder(window(2, 15))
    with pytest.raises(ValueError, match=r"got \(2, 16, 25\)"):
        ENCODERS["tcmr"](16)(window(2, 16, 25))


def test_eval_is_deterministic():
    encoder = small_str().eval()
    features = window(4, 16)
    with torch.no_grad():
        assert torch.equal(encoder(features).features, encoder(features).features)


# ---------------------------------------------------------------- single-frame control


@pytest.mark.parametrize(("hidden_size", "expected"), [(0, 0), (1024, 2 * 2048 * 1024 + 1024 + 2048)])
def test_single_frame_parameter_counts(hidden_size, expected):
    with torch.device("meta"):
        encoder = SingleFrameEncoder(2048, 16, hidden_size)
    assert trainable(encoder) == expected == 4_197_376 * (hidden_size > 0)


def test_single_frame_identity_returns_the_middle_frame():
    features = window(3, 16)
    output = SingleFrameEncoder(SMALL["feature_dim"], 16)(features, train=True)
    assert torch.equal(output.features, features[:, 8]) and output.auxiliary == {}


@pytest.mark.parametrize("hidden_size", [0, 12])
def test_single_frame_output_depends_on_the_middle_frame_only(hidden_size):
    encoder = SingleFrameEncoder(SMALL["feature_dim"], 8, hidden_size)
    features = window(2, 8).requires_grad_()
    encoder(features).features.sum().backward()
    touched = features.grad.abs().sum(dim=(0, 2)) > 0
    assert touched.tolist() == [index == 4 for index in range(8)]


def test_single_frame_rejects_a_negative_width():
    with pytest.raises(ValueError, match="hidden_size must be >= 0"):
        SingleFrameEncoder(24, 16, -1)


# ---------------------------------------------------------------- STR gradients and ablations


@pytest.mark.parametrize("switch", (None, *ABLATIONS))
def test_str_gives_every_parameter_a_gradient(switch):
    torch.manual_seed(1)
    kwargs = {switch: False} if switch else {}
    encoder = small_str(**kwargs, freq_filter="learnable")
    out = encoder(window(3, 16), train=True)
    loss = sum(t.square().sum() for t in (out.features, *out.auxiliary.values()))
    loss.backward()
    dead = [n for n, p in encoder.named_parameters() if p.grad is None or not p.grad.any()]
    assert dead == [n for n, _ in encoder.named_parameters() if ttr_recurrent_weight(n)]


def ttr_recurrent_weight(name: str) -> bool:
    return name.startswith("ttr.") and ".weight_hh_" in name


# Exactly the parameters that get no gradient under each reading (two-layer GRUs). Causal TTR
# blocks run one step from a zero state at the middle frame; bidirectional ones do too in the
# forward direction of their last layer (the reverse direction and the layer below it, read by
# the reverse direction of the last layer at every frame, do not); at every frame nothing is dead.
NO_GRADIENT = {
    "default": ["ttr.grus.0.gru.weight_hh_l0", "ttr.grus.0.gru.weight_hh_l1",
                "ttr.grus.1.gru.weight_hh_l0", "ttr.grus.1.gru.weight_hh_l1"],
    "all_frames": [],
    "ttr_bidirectional": ["ttr.grus.0.gru.weight_hh_l1", "ttr.grus.1.gru.weight_hh_l1"],
    "ste_per_frame": ["ttr.grus.0.gru.weight_hh_l0", "ttr.grus.0.gru.weight_hh_l1",
                      "ttr.grus.1.gru.weight_hh_l0", "ttr.grus.1.gru.weight_hh_l1"],
    "all_three": [],
}


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_parameters_without_gradient_under_each_reading(reading):
    torch.manual_seed(1)
    # Integrations 32 wide: at 8, all units of a ReLU layer start dead for some seeds.
    encoder = STREncoder(seq_len=16, integration_hidden_size=32, **SMALL, **READINGS[reading])
    out = encoder(window(3, 16), train=True)
    loss = sum(t.square().sum() for t in (out.features, *out.auxiliary.values()))
    loss.backward()
    dead = [n for n, p in encoder.named_parameters() if p.grad is None or not p.grad.any()]
    assert dead == NO_GRADIENT[reading]


@pytest.mark.parametrize("fusion", ["after_gru", "before_gru"])
def test_bidirectional_ttr_reaches_the_middle_frame_through_its_reverse_recurrence(fusion):
    """Why only the last layer's forward ``weight_hh`` is exempt above: the reverse direction
    runs over every frame of fragments 2 and 3 (for ``before_gru`` GRU_2's whole output also
    feeds GRU_3, so GRU_2 has no exempt weight at all)."""
    torch.manual_seed(2)
    ttr = TemporalTendencyReasoning(6, 16, 5, 2, target_index=8, fusion=fusion,
                                    bidirectional=True)
    features = window(2, 16, 6)
    before = ttr(features)
    exempt = ["grus.1.gru.weight_hh_l1"] + (["grus.0.gru.weight_hh_l1"]
                                             if fusion == "after_gru" else [])
    parameters = dict(ttr.named_parameters())
    with torch.no_grad():
        for name in exempt:
            parameters[name].normal_()
    torch.testing.assert_close(ttr(features), before)
    with torch.no_grad():
        parameters["grus.1.gru.weight_hh_l1_reverse"].normal_()
    assert not torch.allclose(ttr(features), before)
    later = features.clone()
    later[:, 11] += 1.0  # the last frame of fragment 3 reaches T/2 only backwards
    assert not torch.allclose(ttr(later), ttr(features))


@pytest.mark.parametrize("reading", ["all_frames", "all_three"])
def test_all_frame_supervision_trains_every_frame_and_evaluates_the_middle_one(reading):
    torch.manual_seed(3)
    encoder = small_str(**READINGS[reading])
    features = window(2, 16)
    dim = SMALL["feature_dim"]
    assert encoder.target_frames == "middle" and len(encoder.ttr.grus) == 3
    with torch.no_grad():
        trained = encoder(features, train=True)
        evaluated = encoder(features, train=False)
    assert trained.features.shape == (2, 16, dim)
    assert {k: v.shape for k, v in trained.auxiliary.items()} == {
        "self_fused": (2, dim), "cross_fused": (2, dim)}
    torch.testing.assert_close(evaluated.features, trained.features[:, 8])


def test_bad_reading_values_are_rejected():
    with pytest.raises(ValueError, match="supervise_frames must be 'middle' or 'all', got 'last'"):
        small_str(supervise_frames="last")
    with pytest.raises(ValueError, match="ste_time_excitation .* got 'mean'"):
        small_str(ste_time_excitation="mean")


def test_ttr_recurrent_weights_cannot_reach_the_middle_frame():
    """The reason for the one exemption above: at the middle frame each TTR GRU runs a single
    step from a zero state (docs/str.md, TTR), so its recurrent weights never matter."""
    torch.manual_seed(2)
    ttr = TemporalTendencyReasoning(6, 16, 5, 2, target_index=8)
    features = window(2, 16, 6)
    before = ttr(features)
    with torch.no_grad():
        for name, parameter in ttr.named_parameters():
            if ".weight_hh_" in name:
                parameter.normal_()
    torch.testing.assert_close(ttr(features), before)


@pytest.mark.parametrize(
    ("switch", "removed"),
    [
        ("use_ttr", lambda b, i: b["ttr"] + i(3) - i(2)),
        ("use_ste", lambda b, i: b["ste_time"] + b["ste_freq"] + i(3)),
        ("use_ste_time", lambda b, i: b["ste_time"] + i(3) - i(2)),
        ("use_ste_freq", lambda b, i: b["ste_freq"] + i(3) - i(2)),
        ("use_self_integration", lambda b, i: b["self"]),
        ("use_cross_integration", lambda b, i: b["cross"]),
    ],
)
def test_each_ablation_removes_exactly_its_branch(switch, removed):
    dim, hidden, layers = SMALL["feature_dim"], SMALL["hidden_size"], SMALL["num_layers"]
    branches = str_branches(dim, 16, hidden, layers, SMALL_ATT)
    full, ablated = small_str(), small_str(**{switch: False})
    assert trainable(full) == str_total(dim, 16, hidden, layers, SMALL_ATT)
    assert trainable(full) - trainable(ablated) == removed(
        branches, lambda k: integration(k, dim, SMALL_ATT))
    with torch.no_grad():
        assert ablated(window(2, 16)).features.shape == (2, dim)


def test_branch_counts_match_the_submodules():
    dim, hidden, layers = SMALL["feature_dim"], SMALL["hidden_size"], SMALL["num_layers"]
    encoder = small_str()
    branches = str_branches(dim, 16, hidden, layers, SMALL_ATT)
    assert trainable(encoder.ttr) == branches["ttr"]
    assert trainable(encoder.ste_time) == conv1d(dim, 3) + gru_block(dim, hidden, layers)
    assert trainable(encoder.ste_freq) == branches["ste_freq"]
    assert trainable(encoder.past_pooling) + trainable(encoder.future_pooling) == branches["self"]


def test_without_ttr_and_ste_the_tendency_feature_is_the_middle_frame():
    encoder = small_str(use_ttr=False, use_ste=False)
    features = window(2, 16)
    assert encoder.ttr is None and encoder.ste_time is None and encoder.ste_freq is None
    assert encoder.tendency_integration is None
    assert torch.equal(encoder.tendency_features(features), features[:, 8])


def test_single_tendency_branch_is_used_unweighted():
    encoder = small_str(use_ttr=False, use_ste_freq=False)
    features = window(2, 16)
    with torch.no_grad():
        assert torch.equal(encoder.tendency_features(features), encoder.ste_time(features))


def test_use_ste_false_overrides_the_domain_switches():
    encoder = small_str(use_ste=False, use_ste_time=True, use_ste_freq=True)
    assert encoder.ste_time is None and encoder.ste_freq is None


def test_without_cross_integration_z_integrates_the_self_integrated_halves():
    encoder = small_str(use_cross_integration=False).eval()
    out = encoder(window(2, 16), train=True)
    assert set(out.auxiliary) == {"past_integrated", "future_integrated"}


def test_without_self_integration_halves_are_averaged():
    encoder = small_str(use_self_integration=False)
    half = window(2, 5)
    assert torch.equal(encoder._self_integrate(half, None), half.mean(1))


def test_self_integration_rounds_share_parameters_and_change_the_output():
    torch.manual_seed(3)
    one = small_str(self_integration_rounds=1)
    two = small_str(self_integration_rounds=2)
    two.load_state_dict(one.state_dict())
    features = window(2, 16)
    with torch.no_grad():
        assert not torch.allclose(one(features).features, two(features).features)


def test_aux_outputs_flag():
    encoder = small_str(aux_outputs=False)
    assert encoder(window(2, 16), train=True).auxiliary == {}


@pytest.mark.parametrize("seq_len", [6, 10, 18])
def test_ttr_rejects_a_window_not_divisible_by_four(seq_len):
    with pytest.raises(ValueError, match=f"T={seq_len}"):
        small_str(seq_len)
    assert small_str(seq_len, use_ttr=False)(window(1, seq_len)).features.shape == (1, 24)


# ---------------------------------------------------------------- STR components vs. the equations


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("fusion", ["after_gru", "before_gru"])
@pytest.mark.parametrize("seq_len", [8, 16])
def test_ttr_middle_frame_equals_the_full_equation(fusion, seq_len, bidirectional):
    """Eq. 1-2 over the whole window, with a 4th GRU, read at the middle frame."""
    torch.manual_seed(4)
    dim, hidden, layers = 6, 5, 2
    ttr = TemporalTendencyReasoning(dim, seq_len, hidden, layers, seq_len // 2, fusion,
                                    bidirectional)
    fourth = GRUBlock(dim, hidden, layers, bidirectional)
    features = window(3, seq_len, dim)
    reference = ttr_full_equation(features, [*ttr.grus, fourth], fusion)
    torch.testing.assert_close(ttr(features), reference[:, seq_len // 2])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("fusion", ["after_gru", "before_gru"])
def test_ttr_at_every_frame_is_the_full_equation(fusion, bidirectional):
    torch.manual_seed(4)
    ttr = TemporalTendencyReasoning(6, 16, 5, 2, None, fusion, bidirectional)
    features = window(3, 16, 6)
    assert len(ttr.grus) == 3
    torch.testing.assert_close(ttr(features), ttr_full_equation(features, ttr.grus, fusion))


def ttr_full_equation(features: torch.Tensor, grus, fusion: str) -> torch.Tensor:
    fragments = features.split(features.shape[1] // 4, dim=1)
    outputs = [fragments[0]]
    for gru, fragment in zip(grus, fragments[1:]):
        if fusion == "after_gru":
            outputs.append(gru(fragment) + outputs[-1])
        else:
            outputs.append(gru(fragment + outputs[-1]))
    return features + torch.cat(outputs, dim=1)


def test_ste_time_excitation_follows_equation_3():
    torch.manual_seed(5)
    ste = TimeDomainEnhancement(6, 5, 1, target_index=4)
    features = window(2, 8, 6)
    spatial = ste.conv(features.transpose(1, 2)).transpose(1, 2)
    m1 = torch.stack([(spatial[:, t + 1] - spatial[:, t]) - (features[:, t + 1] - features[:, t])
                      for t in range(7)], dim=1)
    torch.testing.assert_close(ste.excitation(features), torch.sigmoid(m1.mean(1)))
    expected = ste.gru(features)[:, 4] * torch.sigmoid(m1.mean(1))
    torch.testing.assert_close(ste(features), expected)


def test_ste_time_per_frame_excitation_uses_each_frames_offset():
    """A1(t) = sigmoid(M1(t)), M1(t) the offset to the next frame; the last frame reuses T-2's."""
    torch.manual_seed(5)
    features = window(2, 8, 6)
    every = TimeDomainEnhancement(6, 5, 1, target_index=None, excitation="per_frame")
    spatial = every.conv(features.transpose(1, 2)).transpose(1, 2)
    m1 = spatial.diff(dim=1) - features.diff(dim=1)
    expected = torch.sigmoid(torch.cat((m1, m1[:, -1:]), dim=1))
    torch.testing.assert_close(every.excitation(features), expected)
    torch.testing.assert_close(every(features), every.gru(features) * expected)
    middle = TimeDomainEnhancement(6, 5, 1, target_index=4, excitation="per_frame")
    middle.load_state_dict(every.state_dict())
    torch.testing.assert_close(middle.excitation(features), expected[:, 4])


@pytest.mark.parametrize("excitation", ["global", "per_frame"])
def test_ste_branches_at_every_frame_equal_each_frame_as_target(excitation):
    torch.manual_seed(6)
    features = window(2, 8, 6)
    time_every = TimeDomainEnhancement(6, 5, 2, None, excitation)
    freq_every = FrequencyDomainEnhancement(6, 8, 5, 2, None)
    with torch.no_grad():
        freq_every.filter.imag.normal_()
    for frame in range(8):
        time_one = TimeDomainEnhancement(6, 5, 2, frame, excitation)
        time_one.load_state_dict(time_every.state_dict())
        freq_one = FrequencyDomainEnhancement(6, 8, 5, 2, frame)
        freq_one.load_state_dict(freq_every.state_dict())
        torch.testing.assert_close(time_every(features)[:, frame], time_one(features))
        torch.testing.assert_close(freq_every(features)[:, frame], freq_one(features))


@pytest.mark.parametrize("seq_len", [8, 9, 16])
def test_identity_frequency_filter_is_an_exact_identity(seq_len):
    features = window(4, seq_len, 32)
    spectral = SpectralFilter(32, seq_len, "identity")
    assert trainable(spectral) == 0
    torch.testing.assert_close(spectral(features), features, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seq_len", [8, 9, 16])
def test_learnable_frequency_filter_starts_as_identity_with_t_times_d_parameters(seq_len):
    features = window(4, seq_len, 32)
    spectral = SpectralFilter(32, seq_len, "learnable")
    assert trainable(spectral) == seq_len * 32
    torch.testing.assert_close(spectral(features), features, rtol=0, atol=1e-6)
    spectral(features).sin().sum().backward()
    assert spectral.real.grad.abs().min() > 0 and spectral.imag.grad.abs().min() > 0


def test_highpass_frequency_filter_removes_the_temporal_mean():
    features = window(4, 16, 32)
    filtered = SpectralFilter(32, 16, "highpass")(features)
    torch.testing.assert_close(filtered, features - features.mean(1, keepdim=True),
                               rtol=0, atol=1e-6)


def test_frequency_filter_modes_change_the_parameter_count_only_by_the_filter():
    counts = {mode: trainable(small_str(freq_filter=mode))
              for mode in ("learnable", "identity", "highpass")}
    assert counts["learnable"] - counts["identity"] == 16 * SMALL["feature_dim"]
    assert counts["identity"] == counts["highpass"]


def test_bad_frequency_filter_is_rejected():
    with pytest.raises(ValueError, match="freq_filter"):
        small_str(freq_filter="lowpass")


# ---------------------------------------------------------------- TCMR, VIBE, discriminator


def test_tcmr_train_mode_returns_past_and_future_of_the_middle_frame():
    torch.manual_seed(6)
    encoder = ENCODERS["tcmr"](16)
    features = window(2, 16)
    out = encoder(features, train=True)
    changed = features.clone()
    changed[:, 8] += 1.0  # the middle frame never enters the past/future branches
    again = encoder(changed, train=True)
    torch.testing.assert_close(again.auxiliary["past"], out.auxiliary["past"])
    torch.testing.assert_close(again.auxiliary["future"], out.auxiliary["future"])
    assert not torch.allclose(again.features, out.features)


def test_vibe_is_residual_and_causal():
    torch.manual_seed(7)
    encoder = ENCODERS["vibe"](8)
    features = window(2, 8)
    changed = features.clone()
    changed[:, 5:] += 1.0
    out, again = encoder(features).features, encoder(changed).features
    torch.testing.assert_close(again[:, :5], out[:, :5])
    residual = GRUBlock.forward(encoder, features) + features
    torch.testing.assert_close(out, residual)


@pytest.mark.parametrize("batch", [1, 5])
def test_motion_discriminator_shapes(batch):
    disc = MotionDiscriminator(hidden_size=16, attention_size=16).eval()
    out = disc(torch.randn(batch, 16, 69))
    assert out.shape == (batch, 1) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"\(B, T, 69\).*\(2, 16, 72\)"):
        disc(torch.randn(2, 16, 72))


def test_motion_discriminator_attention_dropout_acts_in_train_mode_only():
    torch.manual_seed(8)
    disc = MotionDiscriminator(hidden_size=16, attention_size=16)
    poses = torch.randn(4, 16, 69)
    assert not torch.equal(disc.train()(poses), disc(poses))
    assert torch.equal(disc.eval()(poses), disc(poses))
