#!/usr/bin/env bash
# Wheels for a GPU machine without network whose Python has CUDA torch, lightning, torchmetrics
# and numpy but not the project's other dependencies (docs/benchmarks.md, "GPU").
# Run in the project root with the project installed: `bash benchmarks/gpu_wheels.sh [PYTHON]`
# (default .venv/bin/python). It builds into .whl/ one wheel per package, `pip wheel --no-deps`,
# at the version PYTHON has installed, so the GPU machine runs what the tests here ran. All of
# them are pure Python: the wheels install on any Python 3 and platform.
set -euo pipefail
python=${1:-.venv/bin/python}
packages=(smplx webdataset braceexpand omegaconf jsonargparse docstring-parser typeshed-client)
pins=()
for package in "${packages[@]}"; do
  version=$("$python" -m pip show "$package" 2>/dev/null | sed -n 's/^Version: //p')
  if [[ -z $version ]]; then
    echo "gpu_wheels.sh: $package is not installed in $python (install the project first)" >&2
    exit 1
  fi
  pins+=("$package==$version")
done
mkdir -p .whl
"$python" -m pip wheel -q --no-deps --wheel-dir .whl "${pins[@]}"
ls .whl
