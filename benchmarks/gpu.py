"""The GPU section of docs/benchmarks.md: every figure, measured by one command in 5 minutes.

    python benchmarks/gpu.py [--device cuda|cpu] [--quick] [--budget 300] [--output FILE]
                             [--results FILE] [--workers 4] [--compile-backend inductor]
                             [--compile-mode default]

1. Training step of STR, TCMR-like and VIBE-like at paper dimensions (T 16, D 2048; forward,
   loss, backward, fused Adam; VIBE-like with its discriminator step) at batch 32 and 256, in
   fp32 (TF32 off in cuBLAS and cuDNN), tf32 and bf16 (autocast over fp32 weights, as
   Lightning's ``bf16-mixed``), eager and compiled (the module's ``compile`` switch): ms per
   step (median), sequences/s, FLOP/s (``FlopCounterMode``) over the matmul peak of the same
   precision measured in the same process just before and after the steps, and the GPU-busy
   fraction: kernel time per step (``torch.profiler``) over the step's wall time. The
   compiled steps have one graph per model and precision, its batch dimension symbolic (one
   graph for both batch sizes); the nine graphs are first compiled side by side, each in its
   own process (the compile stage: compilation is CPU work), into torch's on-disk caches, from
   which the training parts then load them.
2. Whole-sequence evaluation of each model at the defaults (``eval_window_batch`` unset: the
   windows of 1,024 frames per batch on a GPU; meshes and 3DPW's joints): frames/s.
3. The training loader (``ShardDataModule``, ``--workers`` workers, pinned memory, each batch
   copied to the GPU): windows/s over STR's consumption at batch 32 (its fastest step).
4. Lightning's ``Trainer.fit`` over a bare loop, STR at batch 32 in fp32: with the progress
   bar, which reads ``train/loss`` on the host at every step (a sync), and without.

Each part runs in a child process with its own share of ``--budget`` seconds: a part that runs
out is stopped and the figures it did not reach are reported as not measured, so one slow part
(a long compilation, say) cannot take the others' time. Nothing is timed while another part
runs, except the compile stage's compilations themselves. Inside a training part the eager
figures come first, then the compiled ones, most wanted first (bf16, tf32, fp32). The section
between the GPU markers of ``--output`` is replaced (a missing file starts as a copy of
docs/benchmarks.md), with the targets for an H100/H200-class card beside the figures.

``--budget`` bounds the whole run; a larger one (say 600) gives every part more time, e.g. when
the compile stage did not finish. ``--device cpu --quick`` runs every part on the CPU at tiny
widths, batch 4 and 8, one compiled configuration per model (static shapes), in under a minute
on 2 cores: a check of the pipeline whose figures mean nothing for a GPU. Its compiled step stops after TorchDynamo's capture (the
``eager`` backend runs the captured graph as it is): Inductor's CPU kernels take minutes to
build.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch._inductor.config

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_data
from benchmark_report import GPU_SECTION_END, GPU_SECTION_START, replace_gpu_section
from run_all import (
    SEQ_LEN,
    bare_loop_seconds,
    lightning_fit_seconds,
    machine,
    matmul_peak_flops,
    random_train_batch,
    synchronize,
)
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from str_lightning.modules import PoseShapeModule, VIBEModule
from str_lightning.nets import STREncoder, TCMREncoder, VIBEEncoder

REPO = Path(__file__).resolve().parents[1]
MODELS = {"STR": STREncoder, "TCMR-like": TCMREncoder, "VIBE-like": VIBEEncoder}
PARTS = {"compile": 0.25, "training/STR": 0.22, "training/TCMR-like": 0.14,
         "training/VIBE-like": 0.14, "evaluation": 0.08, "loader": 0.06,
         "framework": 0.08}  # shares of --budget, in the order they run
# What the parts' server process imports for them (installed packages: it does not see the
# sys.path of this script).
PRELOADED = ("torch", "torch._dynamo", "lightning.pytorch", "str_lightning.modules",
             "datamodules.datamodule")
STOP_MARGIN_S = 5.0  # a child stops starting work this long before its part's budget ends
NOT_REACHED = "not measured: the part's budget ran out first"
TARGETS = {  # an H100/H200-class card
    "str_step_ms_b32": ("<=", 12.0, "STR step at B = 32, ms (fastest precision and mode)"),
    "str_sequences_per_s_b256": (">=", 20_000.0, "STR sequences/s at B = 256 (fastest)"),
    "str_tf32_over_bf16_step": (">=", 1.0, "STR tf32 step time over bf16 (slowest pair)"),
    "str_eval_frames_per_s": (">=", 45_000.0, "STR evaluation frames/s at the defaults"),
    "loader_over_consumption": (">=", 10.0, "loader windows/s over STR's consumption at B = 32"),
    "fit_over_bare_loop": ("<=", 1.05, "Lightning fit over a bare loop (progress bar on)"),
}


@dataclass(frozen=True)
class Sizes:
    """Model widths and repeat counts: the paper's, or tiny ones for ``--quick``."""

    quick: bool

    @property
    def feature_dim(self) -> int:
        return 64 if self.quick else 2048

    @property
    def batches(self) -> tuple[int, ...]:
        return (4, 8) if self.quick else (32, 256)

    @property
    def steps(self) -> tuple[int, int, int]:
        """Warm-up, timed and profiled steps per configuration."""
        return (1, 2, 1) if self.quick else (3, 15, 3)

    @property
    def peak_size(self) -> int:
        return 256 if self.quick else 8192

    def model_args(self, name: str) -> tuple[dict[str, int], dict[str, int]]:
        """The encoder's and the module's widths (the paper's: their defaults)."""
        if not self.quick:
            return {}, {"regressor_hidden_size": 1024}
        encoder = {"STR": {"hidden_size": 32, "integration_hidden_size": 16},
                   "TCMR-like": {"hidden_size": 32, "attention_hidden_size": 16},
                   "VIBE-like": {"hidden_size": 32}}[name]
        module = {"regressor_hidden_size": 32}
        if name == "VIBE-like":
            module.update(discriminator_hidden_size=32, discriminator_attention_size=32)
        return encoder, module


def precisions(device: torch.device) -> tuple[str, ...]:
    """fp32 (TF32 off in matmuls and cuDNN), tf32 (on; CUDA only), bf16 (autocast)."""
    return ("fp32", "tf32", "bf16") if device.type == "cuda" else ("fp32", "bf16")


def training_plan(device: torch.device, sizes: Sizes) -> list[tuple[str, int, str]]:
    """(mode, batch, precision) in the order they are measured: eager first, then the compiled
    steps, most wanted first (``--quick``: the first only)."""
    eager = [("eager", batch, precision) for batch in sizes.batches
             for precision in precisions(device)]
    compiled = [("compiled", batch, precision) for precision in ("bf16", "tf32", "fp32")
                for batch in sizes.batches if precision in precisions(device)]
    return eager + (compiled[:1] if sizes.quick else compiled)


# ---------------------------------------------------------------- the model and its step
def build_model(name: str, device: torch.device, sizes: Sizes) -> PoseShapeModule:
    """A model at the sizes' widths with a constant learning rate, in train mode on ``device``."""
    encoder, (encoder_args, module_args) = MODELS[name], sizes.model_args(name)
    torch.manual_seed(0)
    module = (VIBEModule if name == "VIBE-like" else PoseShapeModule)(
        lambda dim, length: encoder(dim, length, **encoder_args), feature_dim=sizes.feature_dim,
        seq_len=SEQ_LEN,
        scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0),
        **module_args)
    return module.to(device).train()


@contextlib.contextmanager
def precision_flags(precision: str) -> Iterator[None]:
    """TF32 in cuBLAS and cuDNN on for ``tf32`` only (cuDNN's default is on: fp32 turns it off)."""
    flags = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = [flag.allow_tf32 for flag in flags]
    for flag in flags:
        flag.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        for flag, value in zip(flags, saved):
            flag.allow_tf32 = value


def training_step(module: PoseShapeModule, batch: dict[str, torch.Tensor], precision: str,
                  dynamic_batch: bool = False) -> Callable[[], None]:
    """One optimizer step as ``training_step`` takes it, through the module's compile switch;
    ``dynamic_batch``: compiled once for every batch size (the batch dimension is symbolic)."""
    optimizers = module.configure_optimizers()
    autocast = torch.autocast(batch["features"].device.type, torch.bfloat16,
                              enabled=precision == "bf16")
    real = 0.3 * torch.randn_like(batch["pose"])  # VIBE-like's real motion windows
    if dynamic_batch:
        for tensor in (*batch.values(), real):
            torch._dynamo.mark_dynamic(tensor, 0)
    if isinstance(module, VIBEModule):
        generator, discriminator = optimizers[0]

        def adversarial_step() -> None:
            generator.zero_grad(set_to_none=True)
            with autocast:
                terms, fake = module.compiled(module.generator_losses)(batch)
            terms["total"].backward()
            generator.step()
            discriminator.zero_grad(set_to_none=True)
            with autocast:
                loss = module.compiled(module.discriminator_loss)(real, fake.detach())
            loss.backward()
            discriminator.step()

        return adversarial_step
    optimizer = optimizers["optimizer"]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            terms, _ = module.compiled(module.compute_losses)(batch)
        terms["total"].backward()
        optimizer.step()

    return step


def timed(step: Callable[[], object], device: torch.device, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def kernel_seconds_per_step(step: Callable[[], object], device: torch.device, repeats: int
                            ) -> float | None:
    """GPU kernel time of one step (``torch.profiler``; None on the CPU): the device events'
    own time, summed as the profiler's table sums it."""
    if device.type != "cuda":
        return None
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(repeats):
            step()
        synchronize(device)
    kernels = [event for event in prof.key_averages()
               if event.device_type == DeviceType.CUDA and not event.is_user_annotation]
    return sum(event.self_device_time_total for event in kernels) / 1e6 / repeats


# ---------------------------------------------------------------- the parts (child processes)
class Child:
    """A part's process: appends each result to ``results`` as one JSON line, as it comes."""

    def __init__(self, part: str, results: Path, deadline: float) -> None:
        self.part, self.results, self.deadline = part, results, deadline

    def emit(self, **result: object) -> None:
        result = {"part": self.part, **result}
        with open(self.results, "a") as fh:
            fh.write(json.dumps(result) + "\n")
        print(f"[{self.part}] " + ", ".join(f"{k}={_short(v)}" for k, v in result.items()
                                            if k != "part"), flush=True)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()


def compile_jobs(device: torch.device, sizes: Sizes) -> list[tuple[str, str]]:
    """(model, precision) of each graph the compiled steps need: one per precision
    (``--quick``: STR's first, which checks the stage; its backend caches nothing)."""
    precisions_compiled = dict.fromkeys(precision for mode, _, precision
                                        in training_plan(device, sizes) if mode == "compiled")
    jobs = [(name, precision) for name in MODELS for precision in precisions_compiled]
    return jobs[:1] if sizes.quick else jobs


def run_compile(child: Child, name: str, precision: str, device: torch.device, sizes: Sizes,
                compile_options: dict) -> None:
    """Compile one model's step in one precision, so that its training part finds the graph in
    torch's compilation caches (Inductor's and AOTAutograd's, on disk) and only traces."""
    if "TORCHINDUCTOR_COMPILE_THREADS" not in os.environ:
        # The jobs share the cores: kernel-compiling workers for twice the cores in all, as
        # each job's own Python work (tracing, lowering) leaves its workers idle much of the time.
        jobs = len(compile_jobs(device, sizes))
        torch._inductor.config.compile_threads = max(2, 2 * (os.cpu_count() or 1) // jobs)
    module = build_model(name, device, sizes)
    module.hparams.update(compile=True, compile_options=compile_options)
    batch = random_train_batch(sizes.batches[0], sizes.feature_dim, device)
    try:
        with precision_flags(precision):
            step = training_step(module, batch, precision, not sizes.quick)
            seconds = timed(step, device, 1)[0]
    except Exception as error:  # noqa: BLE001 - reported; the training part will say it too
        child.emit(model=name, precision=precision, status=_failure(error))
        return
    child.emit(model=name, precision=precision, status="ok", compile_s=seconds)


def run_training(child: Child, name: str, device: torch.device, sizes: Sizes,
                 compile_options: dict) -> None:
    module = build_model(name, device, sizes)
    module.hparams.compile_options = compile_options
    batches = {size: random_train_batch(size, sizes.feature_dim, device) for size in sizes.batches}
    flops = {}
    for size, batch in batches.items():  # counted on an eager fp32 step (also a warm-up)
        with FlopCounterMode(display=False) as counter:
            training_step(module, batch, "fp32")()
        flops[size] = counter.get_total_flops()
    compile_estimate = 5.0
    for mode, size, precision in training_plan(device, sizes):
        config = {"model": name, "mode": mode, "batch": size, "precision": precision}
        if child.time_left() < (compile_estimate if mode == "compiled" else 0.0) + 2.0:
            child.emit(**config, status=NOT_REACHED)
            continue
        module.hparams.compile = mode == "compiled"
        try:
            with precision_flags(precision):
                step = training_step(module, batches[size], precision,
                                     mode == "compiled" and not sizes.quick)
                first, step_s, peak, kernel_s = measure(step, device, sizes, precision)
        except Exception as error:  # noqa: BLE001 - reported, and the next configuration runs
            torch._dynamo.reset()
            child.emit(**config, status=_failure(error))
            continue
        compile_estimate = first if mode == "compiled" else compile_estimate
        child.emit(**config, status="ok", step_ms=1e3 * step_s, sequences_per_s=size / step_s,
                   first_step_s=first, tflops=flops[size] / step_s / 1e12,
                   peak_tflops=peak / 1e12, of_peak=flops[size] / step_s / peak,
                   gpu_busy=None if kernel_s is None else min(1.0, kernel_s / step_s))


def measure(step: Callable[[], None], device: torch.device, sizes: Sizes, precision: str
            ) -> tuple[float, float, float, float | None]:
    """The first step's seconds, the median step's after the warm-up, the matmul peak of the
    precision around the timed steps (FLOP/s) and the kernel seconds of a step."""
    warmup, repeats, profiled = sizes.steps
    first = timed(step, device, 1)[0]
    timed(step, device, warmup - 1)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    peak_before = matmul_peak_flops(device, sizes.peak_size, dtype=dtype)
    step_s = statistics.median(timed(step, device, repeats))
    peak = (peak_before + matmul_peak_flops(device, sizes.peak_size, dtype=dtype)) / 2
    return first, step_s, peak, kernel_seconds_per_step(step, device, profiled)


def run_evaluation(child: Child, device: torch.device, sizes: Sizes) -> None:
    frames = 256 if sizes.quick else 10_000
    for name in MODELS:
        child.emit(model=name, status="ok", frames=frames,
                   frames_per_s=frames / evaluation_seconds(name, frames, device, sizes))


def evaluation_seconds(name: str, frames: int, device: torch.device, sizes: Sizes) -> float:
    """Fastest of 3 whole-sequence evaluations of ``frames`` frames (3DPW's protocol)."""
    module = build_model(name, device, sizes).eval()
    protocol = module.protocol("3dpw")
    sequence = torch.randn(frames, sizes.feature_dim, device=device)
    module.predict_frames(sequence[:64], protocol)  # warm-up
    return min(timed(lambda: module.predict_frames(sequence, protocol), device, 3))


def run_loader(child: Child, device: torch.device, sizes: Sizes, workers: int) -> None:
    from datamodules.datamodule import ShardDataModule

    batches = 20 if sizes.quick else 400
    with tempfile.TemporaryDirectory(prefix="gpu_loader_") as scratch:
        bench_data.write_split(Path(scratch), 8 if sizes.quick else 48)
        data = ShardDataModule(train_datasets=[{"path": scratch}], seq_len=SEQ_LEN, stride=1,
                               batch_size=32, steps_per_epoch=batches + 1, num_workers=workers,
                               pin_memory=device.type == "cuda")
        loader = iter(data.train_loader_for(0, 1))
        next(loader)  # workers started, shuffle buffers filled
        start = time.perf_counter()
        for batch in loader:
            on_device = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        synchronize(device)
        elapsed = time.perf_counter() - start
    assert on_device["features"].shape[0] == 32
    child.emit(status="ok", workers=workers, batches=batches,
               windows_per_s=batches * 32 / elapsed)


def run_framework(child: Child, device: torch.device, sizes: Sizes) -> None:
    steps, rounds = (4, 1) if sizes.quick else (30, 2)
    batches = [random_train_batch(32, sizes.feature_dim, device, seed) for seed in range(steps)]
    loader = DataLoader(batches, batch_size=None)
    template = build_model("STR", device, sizes)
    runs: dict[str, list[float]] = {"bare_s": [], "fit_s": [], "fit_progress_bar_s": []}
    for _ in range(rounds):  # alternate, keep the best of each: both sides see the same machine
        runs["bare_s"].append(bare_loop_seconds(copy.deepcopy(template), loader, device))
        runs["fit_s"].append(lightning_fit_seconds(copy.deepcopy(template), loader, steps, device))
        runs["fit_progress_bar_s"].append(lightning_fit_seconds(
            copy.deepcopy(template), loader, steps, device, enable_progress_bar=True,
            log_every_n_steps=50))
    child.emit(status="ok", steps=steps, **{key: min(values) for key, values in runs.items()})


def run_part(part: str, args: argparse.Namespace, budget: float) -> None:
    device, sizes = torch.device(args.device), Sizes(args.quick)
    child = Child(part, args.results, time.monotonic() + budget - STOP_MARGIN_S)
    if part.startswith("compile/"):
        _, name, precision = part.split("/")
        run_compile(child, name, precision, device, sizes, compile_options(args))
    elif part.startswith("training/"):
        run_training(child, part.split("/", 1)[1], device, sizes, compile_options(args))
    elif part == "evaluation":
        run_evaluation(child, device, sizes)
    elif part == "loader":
        run_loader(child, device, sizes, args.workers)
    else:
        run_framework(child, device, sizes)


def compile_options(args: argparse.Namespace) -> dict:
    options = {"backend": args.compile_backend}
    if args.compile_mode != "default":
        options["mode"] = args.compile_mode
    return options


# ---------------------------------------------------------------- the parent
def run_parts(args: argparse.Namespace) -> list[dict]:
    """Every part in its own child process, stopped at its budget; the results they wrote.

    The children fork from a server process that has imported torch, Lightning and the models
    once and never touched the GPU: each part starts in a fresh process, with a CUDA context of
    its own, without paying the imports again."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOADED))
    device, sizes = torch.device(args.device), Sizes(args.quick)
    for stage, share in PARTS.items():
        budget = share * args.budget
        parts = ([f"compile/{name}/{precision}" for name, precision in compile_jobs(device, sizes)]
                 if stage == "compile" else [stage])
        print(f"== {', '.join(parts)} (budget {budget:.0f} s)", flush=True)
        processes = {part: context.Process(target=run_part, args=(part, args, budget), name=part)
                     for part in parts}  # the compile jobs run side by side
        deadline = time.monotonic() + budget
        for process in processes.values():
            process.start()
        for part, process in processes.items():
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            ending = (f"stopped at its budget of {budget:.0f} s" if process.is_alive()
                      else f"exited with code {process.exitcode}")
            if process.is_alive():
                process.kill()
                process.join()
            if process.exitcode != 0:
                print(f"== {part}: {ending}", flush=True)
                _report_missing(part, args, f"not measured: the part {ending}")
    return _read_results(args.results)


def planned(part: str, device: torch.device, sizes: Sizes) -> list[dict]:
    """What identifies each result a part is to report."""
    if part.startswith("compile/"):
        _, name, precision = part.split("/")
        return [{"model": name, "precision": precision}]
    if part.startswith("training/"):
        return [{"model": part.split("/", 1)[1], "mode": mode, "batch": batch,
                 "precision": precision} for mode, batch, precision in training_plan(device, sizes)]
    if part == "evaluation":
        return [{"model": name} for name in MODELS]
    return [{}]


def _report_missing(part: str, args: argparse.Namespace, status: str) -> None:
    """Record ``status`` for each result of ``part`` its process did not report."""
    reported = [r for r in _read_results(args.results) if r["part"] == part]
    with open(args.results, "a") as fh:
        for identity in planned(part, torch.device(args.device), Sizes(args.quick)):
            if not any(identity.items() <= result.items() for result in reported):
                fh.write(json.dumps({"part": part, **identity, "status": status}) + "\n")


def _read_results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] \
        if path.exists() else []


def figures(results: list[dict], device: torch.device, sizes: Sizes) -> dict[str, tuple]:
    """Each target's measured value and where it comes from (None where not measured)."""
    measured = [r for r in results if r["status"] == "ok"]
    steps = [r for r in measured if r["part"] == "training/STR"]

    def fastest(batch: int) -> dict | None:
        candidates = [r for r in steps if r["batch"] == batch]
        return min(candidates, key=lambda r: r["step_ms"]) if candidates else None

    small, large = sizes.batches
    best_small, best_large = fastest(small), fastest(large)
    by_config = {(r["mode"], r["batch"], r["precision"]): r["step_ms"] for r in steps}
    tf32_over_bf16 = [(by_config[mode, batch, "tf32"] / ms, f"{mode}, B = {batch}")
                      for (mode, batch, precision), ms in by_config.items()
                      if precision == "bf16" and (mode, batch, "tf32") in by_config]
    evaluation = {r["model"]: r for r in measured if r["part"] == "evaluation"}
    loader = next((r for r in measured if r["part"] == "loader"), None)
    framework = next((r for r in measured if r["part"] == "framework"), None)

    def where(result: dict | None) -> str:
        return "" if result is None else f"{result['mode']}, {result['precision']}"

    return {
        "str_step_ms_b32": (best_small and best_small["step_ms"], where(best_small)),
        "str_sequences_per_s_b256": (best_large and best_large["sequences_per_s"],
                                     where(best_large)),
        "str_tf32_over_bf16_step": min(tf32_over_bf16, default=(
            None, "" if "tf32" in precisions(device) else "no tf32 on this device")),
        "str_eval_frames_per_s": (evaluation.get("STR", {}).get("frames_per_s"),
                                  "STR" in evaluation and f"{evaluation['STR']['frames']} frames"),
        "loader_over_consumption": (
            loader and best_small and loader["windows_per_s"] / best_small["sequences_per_s"],
            loader and best_small and f"{loader['windows_per_s']:.0f} windows/s, "
                                      f"{best_small['sequences_per_s']:.0f} sequences/s"),
        "fit_over_bare_loop": (framework and framework["fit_progress_bar_s"] / framework["bare_s"],
                               framework and f"without the progress bar "
                                              f"{framework['fit_s'] / framework['bare_s']:.3f}"),
    }


def render(results: list[dict], info: dict[str, str], args: argparse.Namespace,
           elapsed: float) -> str:
    """The GPU section of docs/benchmarks.md, with its markers."""
    device, sizes = torch.device(args.device), Sizes(args.quick)
    options = [f"--device {args.device}" if args.device != "cuda" else "",
               "--quick" if args.quick else "",
               f"--budget {args.budget:g}" if args.budget != 300 else ""]
    command = " ".join(["python benchmarks/gpu.py", *filter(None, options)])
    card = info["gpu"] if device.type == "cuda" else f"none (CPU: {info['cpu']})"
    header = (f"Generated by `{command}` (took {elapsed:.0f} s), {time.strftime('%Y-%m-%d')}. "
              f"Card: **{card}**; torch {info['torch']}, CUDA {torch.version.cuda or '-'}, "
              f"Python {info['python']}.")
    caveat = (f"**Not GPU figures**: this run checks the pipeline (device {args.device}"
              f"{', tiny widths' if sizes.quick else ''}); the targets are for an H100/H200-class "
              "card.")
    notes = ("Each part ran in its own process with its own share of the time budget; a figure "
             "not reached is marked so. The matmul peak of each row is of its precision (bf16 "
             "products for bf16), measured just before and after its steps. GPU busy = kernel "
             "time per step (profiler) over the step's wall time. A compiled row's first step "
             "loads its graph from the caches the compile stage filled (the compile stage's "
             "times are those of cold compilations, side by side).")
    lines = [GPU_SECTION_START, "## GPU", "", header, ""]
    if device.type != "cuda" or sizes.quick:
        lines += [caveat, ""]
    lines += ["### Targets (H100/H200-class card)", "", *_target_rows(results, device, sizes), "",
              f"### Training step (T = {SEQ_LEN}, D = {sizes.feature_dim}, fused Adam)", "",
              *_training_rows(results), "", "### Compilation, evaluation, loader, framework", "",
              *_other_rows(results), "", notes, GPU_SECTION_END]
    return "\n".join(lines) + "\n"


def _target_rows(results: list[dict], device: torch.device, sizes: Sizes) -> list[str]:
    rows = ["| target | measured | verdict | from |", "|---|---|---|---|"]
    for key, (value, source) in figures(results, device, sizes).items():
        op, target, label = TARGETS[key]
        verdict = "-" if value is None or device.type != "cuda" else (
            "OK" if (value <= target if op == "<=" else value >= target) else "**MISS**")
        shown = "not measured" if value is None else f"{value:.4g}"
        rows.append(f"| {label} {op} {target:g} | {shown} | {verdict} | {source or ''} |")
    return rows


def _training_rows(results: list[dict]) -> list[str]:
    rows = [("| model | B | precision | mode | ms/step | sequences/s | TFLOP/s | of matmul peak "
             "(TFLOP/s) | GPU busy | first step s |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for result in (r for r in results if r["part"].startswith("training/")):
        head = (f"| {result['model']} | {result['batch']} | {result['precision']} | "
                f"{result['mode']} |")
        if result["status"] != "ok":
            rows.append(f"{head} {result['status']} | | | | | |")
            continue
        busy = "-" if result["gpu_busy"] is None else f"{result['gpu_busy']:.0%}"
        rows.append(f"{head} {result['step_ms']:.1f} | {result['sequences_per_s']:.0f} | "
                    f"{result['tflops']:.2f} | {result['of_peak']:.2f} "
                    f"({result['peak_tflops']:.1f}) | {busy} | {result['first_step_s']:.1f} |")
    return rows


def _other_rows(results: list[dict]) -> list[str]:
    rows = ["| figure | value |", "|---|---|"]
    for result in (r for r in results if not r["part"].startswith("training/")):
        if result["status"] != "ok":
            value = result["status"]
        elif result["part"].startswith("compile/"):
            value = f"{result['compile_s']:.1f}"
        elif result["part"] == "evaluation":
            value = f"{result['frames_per_s']:.0f}"
        elif result["part"] == "loader":
            value = f"{result['windows_per_s']:.0f}"
        else:
            value = (f"{result['bare_s']:.2f} / {result['fit_s']:.2f} / "
                     f"{result['fit_progress_bar_s']:.2f}")
        rows.append(f"| {_label(result)} | {value} |")
    return rows


def _label(result: dict) -> str:
    part = result["part"]
    if part.startswith("compile/"):
        return f"{result['model']} {result['precision']}: compilation of the step, cold (s)"
    if part == "evaluation":
        return f"{result['model']} evaluation at the defaults (frames/s)"
    if part == "loader":
        return f"training loader, {result.get('workers', '?')} workers, batch 32 (windows/s)"
    return "STR at B = 32, fp32: bare loop / fit / fit with progress bar (s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny widths: checks the pipeline")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for all parts")
    parser.add_argument("--output", type=Path, default=None,
                        help="the Markdown file whose GPU section is replaced (default "
                             "docs/benchmarks.md on a GPU; a CPU run writes nothing unless given)")
    parser.add_argument("--results", type=Path, default=None, help="JSON lines of every figure")
    parser.add_argument("--workers", type=int, default=None,
                        help="loader workers (default 4; 0 with --quick)")
    parser.add_argument("--compile-backend", default=None,
                        help="torch.compile backend (default inductor; eager on the CPU with "
                             "--quick)")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode, e.g. reduce-overhead (CUDA graphs)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False (use --device cpu)")
    if args.workers is None:
        args.workers = 0 if args.quick else 4
    if args.compile_backend is None:
        args.compile_backend = "eager" if args.quick and args.device == "cpu" else "inductor"
    output = args.output or (REPO / "docs" / "benchmarks.md" if args.device == "cuda" else None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as scratch:
        if args.results is None:
            args.results = Path(scratch) / "results.jsonl"
        args.results.unlink(missing_ok=True)
        info = machine()
        print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
        results = run_parts(args)
    section = render(results, info, args, time.perf_counter() - started)
    print(section)
    if output is not None:
        current = output.read_text() if output.exists() else \
            (REPO / "docs" / "benchmarks.md").read_text()
        output.write_text(replace_gpu_section(current, section))
        print(f"wrote the GPU section of {output}")
    failed = [r for r in results if r["status"] != "ok"]
    return 1 if failed else 0


def _failure(error: Exception) -> str:
    """A status for the table: the error's type and first line, without Markdown's ``|``."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"failed: {type(error).__name__}: {first_line}"[:300].replace("|", "/")


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
