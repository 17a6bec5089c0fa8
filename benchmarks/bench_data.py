"""Training-data throughput and memory: streaming clip shards vs TCMR-style whole arrays in RAM.

For a small and a 10x larger synthetic split (random float16 features, D=2048, 64-frame clips)
it measures, each in a fresh subprocess so peak RSS is clean:

- ``stream``: ``ShardDataModule``'s training loader in the measuring process (one reader, no
  worker processes): windows per second and peak RSS.
- ``ram``: the TCMR way: every array of the split loaded whole (float32 features, as the
  joblib db files hold them) from one ``.npz``, a stride-1 window index, random windows stacked
  into batches: load time, windows per second and peak RSS.

Usage: python benchmarks/bench_data.py [--clips 40] [--batches 150] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURE_DIM, CLIP_FRAMES, SEQ_LEN, BATCH = 2048, 64, 16, 32


def write_split(directory: Path, clips: int) -> None:
    """Shards and the equivalent whole-array ``db.npz`` of ``clips`` random clips."""
    from datamodules.schema import ShardWriter

    rng = np.random.default_rng(0)
    columns: dict[str, list[np.ndarray]] = {"features": [], "kp2d": [], "kp3d": [], "valid": []}
    with ShardWriter(directory, dataset="bench", split="train", max_samples_per_shard=16) as writer:
        for index in range(clips):
            clip = {
                "meta": {"dataset": "bench", "video": f"v{index}", "start": 0, "split": "train",
                         "fps": 25.0, "kind": "clip", "joints3d": "spin49",
                         "supervision": {"kp2d": True, "kp3d": True, "smpl": False}},
                "features": rng.random((CLIP_FRAMES, FEATURE_DIM), np.float32).astype(np.float16),
                "kp2d": rng.random((CLIP_FRAMES, 49, 3), np.float32),
                "kp3d": rng.random((CLIP_FRAMES, 49, 3), np.float32),
                "valid": np.ones(CLIP_FRAMES, np.uint8),
                "frame_id": np.arange(CLIP_FRAMES, dtype=np.int64),
            }
            writer.write(clip)
            for name, column in columns.items():
                column.append(clip[name].astype(np.float32) if name == "features" else clip[name])
    np.savez(directory / "db.npz", **{k: np.concatenate(v) for k, v in columns.items()})


def peak_rss_mib() -> float:
    """Peak resident set of this process image. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over from the parent through fork + exec, which would leak the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def measure_stream(directory: Path, batches: int) -> dict[str, float]:
    from datamodules.datamodule import ShardDataModule

    data = ShardDataModule(train_datasets=[{"path": str(directory)}], seq_len=SEQ_LEN, stride=1,
                           batch_size=BATCH, steps_per_epoch=batches, num_workers=0)
    iterator = iter(data.train_loader_for(0, 1))
    next(iterator)  # the first batch fills the shuffle buffer; time the steady state
    start = time.perf_counter()
    count = sum(1 for _ in iterator)
    elapsed = time.perf_counter() - start
    return {"windows_per_s": count * BATCH / elapsed, "load_s": 0.0, "peak_rss_mib": peak_rss_mib()}


def measure_ram(directory: Path, batches: int) -> dict[str, float]:
    start = time.perf_counter()
    with np.load(directory / "db.npz") as archive:
        db = {name: archive[name] for name in archive.files}
    load = time.perf_counter() - start
    clip_starts = np.arange(0, len(db["valid"]), CLIP_FRAMES)
    windows = (clip_starts[:, None] + np.arange(CLIP_FRAMES - SEQ_LEN + 1)[None]).ravel()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(batches):
        rows = rng.choice(windows, BATCH)[:, None] + np.arange(SEQ_LEN)
        batch = {name: array[rows] for name, array in db.items()}
    elapsed = time.perf_counter() - start
    assert batch["features"].shape == (BATCH, SEQ_LEN, FEATURE_DIM)
    return {"windows_per_s": batches * BATCH / elapsed, "load_s": load,
            "peak_rss_mib": peak_rss_mib()}


def run_child(mode: str, directory: Path, batches: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, "--workdir", str(directory),
               "--batches", str(batches)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40, help="clips of the small split")
    parser.add_argument("--batches", type=int, default=150, help="batches timed per run")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", choices=("stream", "ram"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure = measure_stream if args.child == "stream" else measure_ram
        print(json.dumps(measure(args.workdir, args.batches)))
        return
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench_data_"))
    print("| split | frames | shards on disk | mode | load s | windows/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for scale in (1, 10):
        directory = root / f"x{scale}"
        write_split(directory, args.clips * scale)
        on_disk = sum(p.stat().st_size for p in directory.glob("*.tar")) / 2**20
        for mode in ("stream", "ram"):
            result = run_child(mode, directory, args.batches)
            print(f"| x{scale} | {args.clips * scale * CLIP_FRAMES} | {on_disk:.0f} MiB | {mode} | "
                  f"{result['load_s']:.2f} | {result['windows_per_s']:.0f} | "
                  f"{result['peak_rss_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
