"""The benchmark suite: every figure as a ratio against a baseline of the same run.

    python benchmarks/run_all.py [--quick] [--device cpu|cuda] [--output docs/benchmarks.md]
                                 [--only training framework data evaluation profiles]

Prints ``RATIO <name> <value> target <op> <value> OK|MISS`` for every figure with a target
(and ``FIGURE`` lines for the others), then writes the Markdown report (figures, command,
machine). Exits 0 when every target is met, 1 otherwise. Ratios, not absolute times, are the
figures because other jobs may share the machine: each ratio's two sides run back to back in
this process (the data ratios in child processes of it).

1. Training step of each variant at paper dimensions (batch 32 x T 16 x D 2048, Adam):
   sequences/s and achieved FLOP/s (``FlopCounterMode``) over an fp32 matmul peak measured
   before and after every timed step (the median of the per-step ratios). Target: STR >= 0.5
   of peak.
2. Lightning ``fit`` against a bare PyTorch loop: same module, ``compute_losses``, in-memory
   batches, optimizer. Target <= 1.05.
3. Streaming reader windows/s against STR's consumption (target >= 10x); peak RSS growth when
   the split grows 10x (target < 10%).
4. Batched PA-MPJPE against a per-frame numpy loop, 100k frames (target >= 20x).
5. Whole-sequence inference against window-by-window (target >= 5x).
Then a torch.profiler table of the STR training step and of STR evaluation.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_data
import bench_metrics
from benchmark_report import MISS_REASONS, NO_MISS, REPORT, gpu_section
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader

from str_lightning.modules import PoseShapeModule
from str_lightning.nets import STREncoder, TCMREncoder, VIBEEncoder

BATCH, SEQ_LEN, FEATURE_DIM = 32, 16, 2048
SECTIONS = ("training", "framework", "data", "evaluation", "profiles")
VARIANTS = {"STR": STREncoder, "TCMR-like": TCMREncoder, "VIBE-like": VIBEEncoder}
FRAMEWORK_MODEL = {"feature_dim": 512, "hidden_size": 256, "integration_hidden_size": 64}


@dataclass
class Figure:
    """One measured figure; ``op``/``target`` are empty for figures reported without a target."""

    name: str
    value: float
    detail: str
    op: str = ""
    target: float = 0.0
    met: bool = True


@dataclass
class Settings:
    quick: bool
    device: torch.device
    workdir: Path

    @property
    def train_steps(self) -> int:
        return 2 if self.quick else 5


class Suite:
    """Collects figures and prints each one as it is measured."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.sections: dict[str, str] = {}

    def target(self, name: str, value: float, op: str, target: float, detail: str) -> None:
        met = bench_metrics.report(name, value, op, target)
        self.figures.append(Figure(name, value, detail, op, target, met))

    def info(self, name: str, value: float, detail: str) -> None:
        print(f"FIGURE {name} {value:.4g} ({detail})", flush=True)
        self.figures.append(Figure(name, value, detail))


# ---------------------------------------------------------------- helpers
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def random_train_batch(batch: int, feature_dim: int, device: torch.device,
                       seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch in the DataModule's layout (docs/data.md), every target supervised."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, SEQ_LEN)
    values = {
        "features": torch.randn(*shape, feature_dim, generator=gen),
        "kp2d": torch.rand(*shape, 49, 3, generator=gen) * 2 - 1,
        "kp3d": torch.randn(*shape, 49, 3, generator=gen) * 0.3,
        "pose": torch.randn(*shape, 72, generator=gen) * 0.3,
        "shape": torch.randn(*shape, 10, generator=gen),
        "w_kp2d": torch.ones(shape), "w_kp3d": torch.ones(shape), "w_smpl": torch.ones(shape),
    }
    return {k: v.to(device) for k, v in values.items()}


def build_module(encoder: Callable[..., torch.nn.Module], device: torch.device,
                 feature_dim: int = FEATURE_DIM, regressor_hidden_size: int = 1024,
                 **encoder_args: int) -> PoseShapeModule:
    """A PoseShapeModule with a constant learning rate (no validation metric to follow)."""
    torch.manual_seed(0)
    module = PoseShapeModule(
        lambda dim, length: encoder(dim, length, **encoder_args), feature_dim=feature_dim,
        seq_len=SEQ_LEN, regressor_hidden_size=regressor_hidden_size,
        scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0))
    return module.to(device).train()


def optimizer_step(module: PoseShapeModule, optimizer: torch.optim.Optimizer,
                   batch: dict[str, torch.Tensor]) -> None:
    """What Lightning's automatic optimisation does for one batch."""
    optimizer.zero_grad(set_to_none=True)
    terms, _ = module.compute_losses(batch)
    terms["total"].backward()
    optimizer.step()


def matmul_peak_flops(device: torch.device, size: int = 2048, repeats: int = 5,
                      dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a square ``size`` matmul in ``dtype`` (fp32: as the TF32 flags say), all
    intra-op threads: the median of ``repeats`` timings (after one untimed product), measured
    the way the step is."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


@dataclass
class StepOverPeak:
    """Training-step repeats, each timed between two matmul-peak measurements."""

    step_s: list[float]
    peak: list[float]  # FLOP/s around each step: the mean of the peaks just before and after

    def ratios(self, flops: float) -> list[float]:
        return [flops / step / peak for step, peak in zip(self.step_s, self.peak)]


def interleaved_steps(step: Callable[[], object], device: torch.device, repeats: int) -> StepOverPeak:
    """Time ``step`` ``repeats`` times with the matmul peak measured before and after each
    repeat (the peak after one is the peak before the next), so that each step is compared
    with the machine as it was while the step ran: load from other jobs changes both sides."""
    result = StepOverPeak([], [])
    before = matmul_peak_flops(device)
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        result.step_s.append(time.perf_counter() - start)
        after = matmul_peak_flops(device)
        result.peak.append((before + after) / 2)
        before = after
    return result


# ---------------------------------------------------------------- 1. training step
def bench_training(suite: Suite, settings: Settings) -> float:
    """Returns STR's sequences/s (the consumption rate the data figure compares against)."""
    device = settings.device
    batch = random_train_batch(BATCH, FEATURE_DIM, device)
    rates = {}
    for name, encoder in VARIANTS.items():
        module = build_module(encoder, device)
        optimizer = module.configure_optimizers()["optimizer"]
        with FlopCounterMode(display=False) as counter:  # also the warm-up step
            optimizer_step(module, optimizer, batch)
        flops = counter.get_total_flops()
        measured = interleaved_steps(functools.partial(optimizer_step, module, optimizer, batch),
                                     device, settings.train_steps)
        step_s, peak = statistics.median(measured.step_s), statistics.median(measured.peak)
        ratio = statistics.median(measured.ratios(flops))
        rates[name] = BATCH / step_s
        detail = (f"{name}: {step_s:.2f} s/step, {rates[name]:.1f} sequences/s, "
                  f"{flops / 1e9:.0f} GFLOP/step, {flops / step_s / 1e9:.1f} GFLOP/s "
                  f"of a {peak / 1e9:.1f} GFLOP/s matmul peak (medians of {settings.train_steps} "
                  f"steps, each between two peak measurements)")
        key = f"train_{name.lower().replace('-like', '')}_flops_over_matmul_peak"
        if name == "STR":
            suite.target(key, ratio, ">=", 0.5, detail)
        else:
            suite.info(key, ratio, detail)
        del module, optimizer
    return rates["STR"]


# ---------------------------------------------------------------- 2. framework overhead
class _FitClock(Callback):
    """Wall time of the fit loop from the first batch to the end of training."""

    def on_train_start(self, trainer: Trainer, pl_module: PoseShapeModule) -> None:
        synchronize(pl_module.device)
        self.start = time.perf_counter()

    def on_train_end(self, trainer: Trainer, pl_module: PoseShapeModule) -> None:
        synchronize(pl_module.device)
        self.seconds = time.perf_counter() - self.start


def lightning_fit_seconds(module: PoseShapeModule, loader: DataLoader, steps: int,
                          device: torch.device, **trainer_args: object) -> float:
    """Seconds of ``Trainer.fit`` from the first batch to the end (no progress bar, logger or
    checkpoints unless ``trainer_args`` say otherwise)."""
    clock = _FitClock()
    settings = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                "enable_model_summary": False, **trainer_args}
    trainer = Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                      max_steps=steps, max_epochs=1, num_sanity_val_steps=0, limit_val_batches=0,
                      callbacks=[clock], **settings)
    trainer.fit(module, train_dataloaders=loader)
    return clock.seconds


def bare_loop_seconds(module: PoseShapeModule, loader: DataLoader, device: torch.device) -> float:
    optimizer = module.configure_optimizers()["optimizer"]
    synchronize(device)
    start = time.perf_counter()
    for batch in loader:
        optimizer_step(module, optimizer, batch)
    synchronize(device)
    return time.perf_counter() - start


def bench_framework(suite: Suite, settings: Settings) -> None:
    steps = 12 if settings.quick else 30
    dim = FRAMEWORK_MODEL["feature_dim"]
    batches = [random_train_batch(BATCH, dim, settings.device, seed) for seed in range(steps)]
    loader = DataLoader(batches, batch_size=None)
    template = build_module(STREncoder, settings.device, feature_dim=dim,
                            regressor_hidden_size=256, **{k: v for k, v in FRAMEWORK_MODEL.items()
                                                          if k != "feature_dim"})
    bare, fit = [], []
    for _ in range(3):  # alternate, keep the best of each: load from other jobs hits both
        bare.append(bare_loop_seconds(copy.deepcopy(template), loader, settings.device))
        fit.append(lightning_fit_seconds(copy.deepcopy(template), loader, steps, settings.device))
    detail = (f"{steps} steps of STR (D {dim}, GRU {FRAMEWORK_MODEL['hidden_size']}), batch "
              f"{BATCH} x {SEQ_LEN}: Trainer.fit {min(fit):.2f} s, bare loop {min(bare):.2f} s")
    suite.target("lightning_fit_over_bare_loop", min(fit) / min(bare), "<=", 1.05, detail)


# ---------------------------------------------------------------- 3. data
def bench_streaming(suite: Suite, settings: Settings, consumption_per_s: float) -> None:
    clips, batches = (20, 60) if settings.quick else (40, 150)
    rows = []
    results = {}
    for scale in (1, 10):
        directory = settings.workdir / f"data_x{scale}"
        bench_data.write_split(directory, clips * scale)
        for mode in ("stream", "ram"):
            results[scale, mode] = bench_data.run_child(mode, directory, batches)
            r = results[scale, mode]
            rows.append(f"| x{scale} | {clips * scale * bench_data.CLIP_FRAMES} | {mode} | "
                        f"{r['load_s']:.2f} | {r['windows_per_s']:.0f} | {r['peak_rss_mib']:.0f} |")
    stream = results[1, "stream"]["windows_per_s"]
    suite.target("stream_windows_over_str_consumption", stream / consumption_per_s, ">=", 10,
                 f"one in-process reader {stream:.0f} windows/s vs STR training "
                 f"{consumption_per_s:.1f} sequences/s")
    small, large = results[1, "stream"]["peak_rss_mib"], results[10, "stream"]["peak_rss_mib"]
    suite.target("stream_peak_rss_growth_10x_data", large / small - 1, "<", 0.10,
                 f"peak RSS {small:.0f} MiB -> {large:.0f} MiB for {clips} -> {clips * 10} clips")
    ram_small, ram_large = results[1, "ram"]["peak_rss_mib"], results[10, "ram"]["peak_rss_mib"]
    suite.info("ram_peak_rss_growth_10x_data", ram_large / ram_small - 1,
               f"whole arrays in RAM, TCMR's way: {ram_small:.0f} -> {ram_large:.0f} MiB")
    suite.sections["data"] = "\n".join(
        ["| split | frames | mode | load s | windows/s | peak RSS MiB |", "|---|---|---|---|---|---|",
         *rows])


# ---------------------------------------------------------------- 4-5. metrics, inference
def bench_evaluation(suite: Suite, settings: Settings) -> None:
    with torch_threads(1):  # like the numpy loop: compare the methods core for core
        pa = bench_metrics.bench_pa_mpjpe(100_000)
        inference = bench_metrics.bench_inference(500 if settings.quick else 2000)
    suite.target("pa_mpjpe_batched_vs_numpy_loop", pa["ratio"], ">=", 20,
                 f"100,000 frames x 14 joints, torch 1 thread: PAMPJPE {pa['batched_s']:.3f} s, "
                 f"numpy SVD loop {pa['loop_s']:.3f} s")
    suite.target("inference_batched_vs_window_loop", inference["ratio"], ">=", 5,
                 f"{inference['frames']} frames, TCMR-like (D 64, hidden 64), torch 1 thread: "
                 f"{inference['frames'] / inference['batched_s']:.0f} frames/s batched, "
                 f"{inference['frames'] / inference['loop_s']:.0f} frames/s window by window")


# ---------------------------------------------------------------- profiles
def self_cpu_profile(run: Callable[[], object]) -> tuple[list, float]:
    """The operations of one ``run()`` after a warm-up run, largest self CPU time first (torch
    profiler's averages per operation), and their total self CPU time in microseconds."""
    from torch.profiler import profile

    run()
    with profile() as prof:
        run()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return events, sum(e.self_cpu_time_total for e in events)


def profile_table(run: Callable[[], object], rows: int = 8) -> str:
    events, total = self_cpu_profile(run)
    lines = ["| op | self CPU ms | share | calls |", "|---|---|---|---|"]
    lines += [f"| `{e.key}` | {e.self_cpu_time_total / 1000:.0f} | "
              f"{e.self_cpu_time_total / total:.0%} | {e.count} |" for e in events[:rows]]
    return "\n".join(lines)


def bench_profiles(suite: Suite, settings: Settings) -> None:
    module = build_module(STREncoder, settings.device)
    optimizer = module.configure_optimizers()["optimizer"]
    batch = random_train_batch(BATCH, FEATURE_DIM, settings.device)
    suite.sections["profile_train"] = profile_table(lambda: optimizer_step(module, optimizer, batch))
    module.eval()
    sequence = torch.randn(64, FEATURE_DIM, device=settings.device)
    suite.sections["profile_eval"] = profile_table(lambda: module.predict_frames(sequence))


# ---------------------------------------------------------------- report
def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor() or "unknown")
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "gpu": gpu, "torch": torch.__version__,
            "threads": str(torch.get_num_threads()), "python": platform.python_version(),
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations, same models")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch space for shards")
    parser.add_argument("--only", choices=SECTIONS, nargs="+", default=None,
                        help="measure these sections and print their figures; the report is "
                             "not written (the data section needs the training section)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False on this machine")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="run_all_") as scratch:
        settings = Settings(args.quick, torch.device(args.device), args.workdir or Path(scratch))
        suite = Suite()
        info = machine()
        print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
        sections = args.only or SECTIONS
        consumption = bench_training(suite, settings) if "training" in sections else 0.0
        if "framework" in sections:
            bench_framework(suite, settings)
        if "data" in sections:
            if not consumption:
                parser.error("--only data needs the training section too (STR's consumption)")
            bench_streaming(suite, settings, consumption)
        if "evaluation" in sections:
            bench_evaluation(suite, settings)
        if "profiles" in sections:
            bench_profiles(suite, settings)
    elapsed = time.perf_counter() - started
    if args.only:
        return 0 if all(f.met for f in suite.figures) else 1
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "") + \
        (f" --device {args.device}" if args.device != "cpu" else "")
    previous = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(render(suite, info, command, elapsed, gpu_section(previous)))
    print(f"wrote {args.output} ({elapsed:.0f} s)")
    return 0 if all(f.met for f in suite.figures) else 1


def render(suite: Suite, info: dict[str, str], command: str, elapsed: float,
           gpu: str) -> str:
    """The page: this run's figures, and ``gpu``, the GPU section (``gpu.py``'s) kept as it was."""
    figures = ["| figure | value | target | verdict | measured |", "|---|---|---|---|---|"]
    figures += [f"| `{f.name}` | {f.value:.3g} | {f'{f.op} {f.target:g}' if f.op else '-'} | "
                f"{('OK' if f.met else '**MISS**') if f.op else '-'} | {f.detail} |"
                for f in suite.figures]
    misses = [f"- `{f.name}` ({f.value:.3g}, target {f.op} {f.target:g}): "
              f"{MISS_REASONS.get(f.name, 'no explanation recorded')}"
              for f in suite.figures if not f.met]
    return REPORT.format(command=command, date=time.strftime("%Y-%m-%d"), elapsed=elapsed,
                         figures="\n".join(figures), misses="\n".join(misses) or NO_MISS,
                         gpu_section=gpu, **info, **suite.sections)


if __name__ == "__main__":
    sys.exit(main())
