"""No host syncs: a training step (forward, loss, backward) and whole-sequence inference a GPU
could run without waiting for the host, for every encoder and both kinds of body model.

Counted with :class:`~str_lightning.host_syncs.HostSyncCounter` on the CPU (scalar reads,
data-dependent shapes, host indices) and on the ``meta`` device, where every tensor made from
host data and every host <-> device copy shows as it would on a GPU (and on ``cuda`` where
one is present: then the tests run there too). Each computation runs once before it is counted, as a training loop would:
the first call may place the index tensors it keeps on the device.
"""

from __future__ import annotations

import pytest
import torch
from helpers import write_random_body_dir

from str_lightning.host_syncs import HostSyncCounter
from str_lightning.modules import PoseShapeModule, VIBEModule
from str_lightning.nets import STREncoder, TCMREncoder, VIBEEncoder

DIM, SEQ_LEN, BATCH = 32, 16, 3
ENCODERS = {
    "str": lambda dim, seq_len: STREncoder(dim, seq_len, hidden_size=16, integration_hidden_size=8),
    "str_all_frames": lambda dim, seq_len: STREncoder(dim, seq_len, hidden_size=16,
                                                      integration_hidden_size=8,
                                                      supervise_frames="all"),
    "tcmr": lambda dim, seq_len: TCMREncoder(dim, seq_len, hidden_size=16, attention_hidden_size=8),
    "vibe": lambda dim, seq_len: VIBEEncoder(dim, seq_len, hidden_size=16),
}
DEVICES = ["cpu", "meta", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module", params=["mannequin", "smpl_files"])
def body_model(request, tmp_path_factory) -> str:
    """The mannequin, or SMPL files with pose correctives (another branch of the skinning)."""
    if request.param == "mannequin":
        return "mannequin"
    return str(write_random_body_dir(tmp_path_factory.mktemp("smpl")))


def build(encoder: str, body_model: str, device: str, module_class=PoseShapeModule):
    torch.manual_seed(0)
    module = module_class(ENCODERS[encoder], feature_dim=DIM, seq_len=SEQ_LEN,
                          body_model=body_model, regressor_hidden_size=16)
    return module.to(device).train()


def training_batch(device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (BATCH, SEQ_LEN)
    batch = {
        "features": torch.randn(*shape, DIM, generator=gen),
        "kp2d": torch.rand(*shape, 49, 3, generator=gen),
        "kp3d": torch.randn(*shape, 49, 3, generator=gen),
        "pose": 0.3 * torch.randn(*shape, 72, generator=gen),
        "shape": torch.randn(*shape, 10, generator=gen),
        "w_kp2d": torch.ones(shape), "w_kp3d": torch.ones(shape),
        "w_smpl": (torch.arange(BATCH) % 2).float()[:, None].expand(shape),
    }
    return {key: value.to(device) for key, value in batch.items()}


def count_syncs(run) -> HostSyncCounter:
    run()
    with HostSyncCounter() as counter:
        run()
    assert counter.ops > 100, "the computation did not run under the counter"
    return counter


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_training_step_waits_for_nothing(encoder, body_model, device):
    module = build(encoder, body_model, device)
    batch = training_batch(device)

    def step():
        terms, _ = module.compute_losses(batch)
        terms["total"].backward()

    counter = count_syncs(step)
    assert counter.syncs == [], counter.summary()


@pytest.mark.parametrize("device", DEVICES)
def test_vibe_adversarial_step_waits_for_nothing(body_model, device):
    module = build("vibe", body_model, device, VIBEModule)
    batch = training_batch(device)
    real = batch["pose"].flip(0)

    def step():
        terms, fake = module.generator_losses(batch)
        terms["total"].backward()
        module.discriminator_loss(real, fake.detach()).backward()

    counter = count_syncs(step)
    assert counter.syncs == [], counter.summary()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("protocol", ["synthetic", "mpii3d"])
@pytest.mark.parametrize("encoder", ["str", "tcmr", "vibe"])
def test_whole_sequence_inference_waits_for_nothing(encoder, protocol, device):
    """Several window batches (eval_window_batch 8 over 21 frames), meshes and joints."""
    module = build(encoder, "mannequin", device).eval()
    module.hparams.eval_window_batch = 8
    sequence = torch.randn(21, DIM).to(device)
    chosen = None if protocol is None else module.protocol(protocol)
    counter = count_syncs(lambda: module.predict_frames(sequence, chosen))
    assert counter.syncs == [], counter.summary()


def test_the_counter_sees_every_kind_of_host_sync():
    """Each pattern the counter must catch, and what it must let pass."""
    host = torch.arange(6.0)
    meta = torch.empty(6, device="meta")
    cases = {
        "scalar read": [lambda: host.sum().item(), lambda: int(host[2]), lambda: bool(host[1] > 0),
                        lambda: [1, 2, 3][host.long()[1]]],
        "data-dependent shape": [lambda: host[host > 2], lambda: host.nonzero(),
                                 lambda: torch.unique(host), lambda: host.masked_select(host > 1)],
        "host index": [lambda: host[[0, 2]], lambda: host[torch.tensor([0, 2]).numpy()],
                       lambda: meta[torch.tensor([0, 2])]],
        "transfer": [lambda: host.to("meta"), lambda: torch.tensor([1.0], device="meta"),
                     lambda: meta.copy_(host)],
    }
    for kind, runs in cases.items():
        for run in runs:
            with HostSyncCounter() as counter:
                run()
            assert kind in {sync.kind for sync in counter.syncs}, (kind, counter.summary())
    clean = [lambda: host[1:4] * 2, lambda: torch.where(host > 2, host, 0.0), lambda: meta * 2,
             lambda: meta * torch.tensor(2.0), lambda: host.to("meta", non_blocking=True),
             lambda: host.index_select(0, torch.tensor([0, 2]))]
    for run in clean:
        with HostSyncCounter() as counter:
            run()
        assert counter.syncs == [], counter.summary()
