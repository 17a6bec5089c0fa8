"""Whole-sequence inference: one prediction per frame, in order, from the right window."""

import pytest
import torch
from torch import Tensor, nn

from str_lightning.evaluation.inference import predict_sequence
from str_lightning.nets import STREncoder, TCMREncoder, VIBEEncoder
from str_lightning.nets.interface import EncoderOutput

LENGTHS = [1, 5, 15, 16, 17, 100]
T = 16


class WindowEchoEncoder(nn.Module):
    """Middle-frame test encoder whose output is its whole input window ``(B, T*D)``.

    With features ``f[i] = i`` the prediction of a frame lists the frames of its window.
    """

    target_frames = "middle"

    def __init__(self, seq_len: int = T):
        super().__init__()
        self.seq_len = seq_len

    def forward(self, features: Tensor, train: bool = False) -> EncoderOutput:
        return EncoderOutput(features.flatten(1))


class ChunkEchoEncoder(nn.Module):
    """All-frame test encoder: per frame (its own feature, the largest feature of its chunk)."""

    target_frames = "all"

    def __init__(self, seq_len: int = T):
        super().__init__()
        self.seq_len = seq_len

    def forward(self, features: Tensor, train: bool = False) -> EncoderOutput:
        chunk_max = features.amax(dim=1, keepdim=True).expand_as(features)
        return EncoderOutput(torch.cat((features, chunk_max), dim=-1))


def frame_numbers(num_frames: int) -> Tensor:
    return torch.arange(num_frames, dtype=torch.float32)[:, None]


def identity(x: Tensor) -> Tensor:
    return x


def expected_window(frame: int, num_frames: int, edge_mode: str) -> list[int]:
    """The window of ``frame``, straight from the written rule (docs/evaluation.md)."""
    first = frame - T // 2
    window = list(range(first, first + T))
    if edge_mode == "tcmr" and (window[0] < 0 or window[-1] >= num_frames):
        return [frame] * T
    return [min(max(i, 0), num_frames - 1) for i in window]


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("edge_mode", ["replicate", "tcmr"])
def test_middle_frame_windows_follow_the_edge_rule(num_frames, edge_mode):
    out = predict_sequence(WindowEchoEncoder(), identity, frame_numbers(num_frames),
                           edge_mode=edge_mode, batch_size=7)
    assert out.shape == (num_frames, T)
    expected = [expected_window(i, num_frames, edge_mode) for i in range(num_frames)]
    assert out.long().tolist() == expected


def test_tcmr_mode_repeats_the_first_half_and_last_half_minus_one_frames():
    out = predict_sequence(WindowEchoEncoder(), identity, frame_numbers(40), edge_mode="tcmr")
    static = [i for i in range(40) if (out[i] == i).all()]
    assert static == [*range(8), *range(33, 40)]  # first T//2 = 8, last T-1-T//2 = 7


@pytest.mark.parametrize("num_frames", LENGTHS)
def test_all_frame_chunks_give_every_frame_once_in_order(num_frames):
    out = predict_sequence(ChunkEchoEncoder(), identity, frame_numbers(num_frames), batch_size=3)
    assert out.shape == (num_frames, 2)
    assert out[:, 0].long().tolist() == list(range(num_frames))
    chunk_last = [min((i // T + 1) * T - 1, num_frames - 1) for i in range(num_frames)]
    assert out[:, 1].long().tolist() == chunk_last  # padding repeats the last real frame


@pytest.mark.parametrize(("encoder", "device", "windows"), [
    (WindowEchoEncoder(), "cpu", 128), (ChunkEchoEncoder(), "cpu", 128),
    (WindowEchoEncoder(), "meta", 1024), (ChunkEchoEncoder(), "meta", 64)])
def test_the_default_window_batch_is_128_windows_on_the_cpu_and_1024_frames_elsewhere(
        encoder, device, windows):
    sizes = []

    def regress(target: Tensor) -> Tensor:
        sizes.append(target.shape[0])
        return target

    num_frames = 2100 if encoder.target_frames == "middle" else 2100 * T
    predict_sequence(encoder, regress, frame_numbers(num_frames).to(device))
    frames_per_window = T if encoder.target_frames == "all" else 1
    assert sizes[0] == windows * frames_per_window
    assert sum(sizes) >= num_frames and set(sizes[:-1]) == {sizes[0]}


# ---------------------------------------------------------------- real encoders
FEATURE_DIM = 6


def tiny_encoders():
    torch.manual_seed(0)
    return {
        "tcmr": TCMREncoder(FEATURE_DIM, T, hidden_size=4, num_layers=1, attention_hidden_size=4),
        "str": STREncoder(FEATURE_DIM, T, hidden_size=4, num_layers=1, integration_hidden_size=4),
        "vibe": VIBEEncoder(FEATURE_DIM, T, hidden_size=4, num_layers=1),
    }


def regress_to_dict(features: Tensor) -> dict[str, Tensor]:
    return {"sum": features.sum(-1), "first": features[:, :2]}


def naive_predictions(encoder, features: Tensor, edge_mode: str) -> dict[str, Tensor]:
    """One window at a time, built by hand from the rules."""
    num_frames = features.shape[0]
    rows = []
    if encoder.target_frames == "middle":
        for frame in range(num_frames):
            window = features[expected_window(frame, num_frames, edge_mode)]
            rows.append(encoder(window[None], train=False).features)
    else:
        for start in range(0, num_frames, T):
            chunk = [min(i, num_frames - 1) for i in range(start, start + T)]
            rows.append(encoder(features[chunk][None], train=False).features[0])
    target = torch.cat(rows)[:num_frames]
    return regress_to_dict(target)


@pytest.mark.parametrize("name", ["tcmr", "str", "vibe"])
@pytest.mark.parametrize("edge_mode", ["replicate", "tcmr"])
@pytest.mark.parametrize("num_frames", LENGTHS)
def test_batched_equals_window_by_window_for_real_encoders(name, edge_mode, num_frames):
    encoder = tiny_encoders()[name].eval()
    features = torch.randn(num_frames, FEATURE_DIM, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = naive_predictions(encoder, features, edge_mode)
    got = predict_sequence(encoder, regress_to_dict, features, edge_mode=edge_mode, batch_size=5)
    assert set(got) == {"sum", "first"}
    for key in got:
        assert got[key].shape[0] == num_frames
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("features", "kwargs", "error", "match"),
    [
        (torch.zeros(0, 1), {}, ValueError, "N >= 1"),
        (torch.zeros(2, 4, 1), {}, ValueError, r"\(N, D\)"),
        (torch.zeros(5, 1), {"edge_mode": "reflect"}, ValueError, "edge_mode must be one of"),
        (torch.zeros(5, 1), {"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ],
)
def test_bad_input_gets_a_clear_error(features, kwargs, error, match):
    with pytest.raises(error, match=match):
        predict_sequence(WindowEchoEncoder(), identity, features, **kwargs)


def test_regress_returning_the_wrong_number_of_rows_is_reported():
    with pytest.raises(ValueError, match="rows for"):
        predict_sequence(WindowEchoEncoder(), lambda x: x[:1], frame_numbers(5))
