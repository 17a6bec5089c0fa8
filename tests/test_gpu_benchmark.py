"""``benchmarks/gpu.py``, the command that measures the GPU section of docs/benchmarks.md: its
whole pipeline on the CPU (``--device cpu --quick``), and the section it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from benchmark_report import (
    GPU_NOT_MEASURED,
    GPU_SECTION_END,
    GPU_SECTION_START,
    gpu_section,
    replace_gpu_section,
)

MODELS = ("STR", "TCMR-like", "VIBE-like")


def test_every_part_runs_on_the_cpu_and_fills_the_gpu_section(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\nbefore\n\n{GPU_NOT_MEASURED}\nafter\n")
    results = tmp_path / "results.jsonl"
    run = subprocess.run(
        [sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--quick", "--output", str(page),
         "--results", str(results)], cwd=REPO, capture_output=True, text=True, timeout=600,
        check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r for r in rows if r["status"] != "ok"] == []
    training = {(r["model"], r["mode"], r["batch"], r["precision"])
                for r in rows if r["part"].startswith("training/")}
    assert training == {(model, "eager", batch, precision) for model in MODELS
                        for batch in (4, 8) for precision in ("fp32", "bf16")} | {
        (model, "compiled", 4, "bf16") for model in MODELS}
    assert {r["part"] for r in rows} >= {"compile/STR/bf16", "evaluation", "loader", "framework"}
    assert all(r["step_ms"] > 0 and 0 < r["of_peak"] for r in rows if "step_ms" in r)

    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nbefore\n\n") and text.endswith("\nafter\n")
    section = gpu_section(text)
    assert "No GPU was measured" not in section and "Not GPU figures" in section
    assert "not measured:" not in section  # no figure lacks for want of time or by an error
    assert "| STR | 8 | bf16 | eager |" in section and "| VIBE-like | 4 | bf16 | compiled |" in section


def test_the_gpu_section_is_replaced_in_place_or_appended():
    section = f"{GPU_SECTION_START}\n## GPU\n\nnew\n{GPU_SECTION_END}\n"
    page = f"# B\n\n{GPU_NOT_MEASURED}\n## Profiles\n"
    assert replace_gpu_section(page, section) == f"# B\n\n{section}\n## Profiles\n"
    assert replace_gpu_section("# B\n", section) == f"# B\n\n{section}"
    assert gpu_section("# B\n") == GPU_NOT_MEASURED


def test_the_benchmarks_page_has_a_gpu_section_that_says_how_to_measure_it():
    section = gpu_section((REPO / "docs" / "benchmarks.md").read_text())
    assert section.startswith(GPU_SECTION_START) and section.rstrip().endswith(GPU_SECTION_END)
    assert section in (REPO / "docs" / "benchmarks.md").read_text()
    assert "python benchmarks/gpu.py" in section
