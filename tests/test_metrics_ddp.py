"""Metrics under DDP: two Gloo processes with uneven inputs equal one process over all inputs."""

import json
import socket
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from str_lightning.evaluation.protocols import build_metrics, get_protocol, update_metrics

NUM_VERTICES = 50


def make_sequences(seed: int = 0):
    """Sequences of joints and vertices with masks: (pred_j, gt_j, pred_v, gt_v, valid)."""
    gen = torch.Generator().manual_seed(seed)
    sequences = []
    for length in (23, 9, 2, 31, 14):
        gt_j = torch.randn(length, 14, 3, generator=gen)
        gt_v = torch.randn(length, NUM_VERTICES, 3, generator=gen)
        valid = torch.rand(length, generator=gen) > 0.2
        sequences.append((gt_j + 0.1 * torch.randn(gt_j.shape, generator=gen), gt_j,
                          gt_v + 0.1 * torch.randn(gt_v.shape, generator=gen), gt_v, valid))
    return sequences


def all_invalid(sequence):
    *arrays, valid = sequence
    return (*arrays, torch.zeros_like(valid))


# Each scenario: which sequences each rank gets (uneven on purpose), as lambdas of the list.
SCENARIOS = {
    "uneven": (lambda s: s[:4], lambda s: s[4:]),
    "rank1_has_no_valid_frame": (lambda s: s, lambda s: [all_invalid(s[1]), all_invalid(s[2])]),
    "rank1_never_updates": (lambda s: s, lambda s: []),
}


def evaluate(sequences) -> dict[str, float]:
    metrics = build_metrics(get_protocol("3dpw"))
    for pred_j, gt_j, pred_v, gt_v, valid in sequences:
        update_metrics(metrics, pred_j, gt_j, valid, pred_v, gt_v)
    # A rank that never updated still joins the synchronisation inside compute().
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*was called before the ``update``")
        result = metrics.compute()
    return {name: value.item() for name, value in result.items()}


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)
    try:
        results = {}
        for name, split in SCENARIOS.items():
            results[name] = evaluate(split[rank](make_sequences()))
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    single = evaluate(make_sequences())
    assert set(single) == {"mpjpe", "pa_mpjpe", "accel", "mpvpe"}
    for rank in range(2):
        per_scenario = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for scenario, values in per_scenario.items():
            for name, expected in single.items():
                assert values[name] == pytest.approx(expected, rel=1e-12), (rank, scenario, name)
