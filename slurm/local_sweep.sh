#!/usr/bin/env bash
# Configs x seeds on this machine, one run after another, then `str-lightning compare` over them.
#
#   slurm/local_sweep.sh OUT.md CONFIG_OR_DIR... [--ablations BENCHMARK]... [-- extra `str-lightning fit/test` args]
#
# A directory stands for its sorted *.yaml. `--ablations BENCHMARK` stands for the ablation study
# of a benchmark file (as slurm/ablations.sbatch runs it): the file alone (the full model), then
# with each of the sorted rows/*.yaml beside it stacked on top (--config BENCHMARK --config ROW).
# For every config and seed: `fit --ckpt_path auto` (an interrupted sweep resumes where it
# stopped; a finished run only re-tests) and `test --ckpt_path best`, each in the run directory
# of that seed; then compare writes OUT.md, OUT.csv and OUT.png (mean ± std over seeds,
# differences from the first config's row with 95 % intervals). Examples (docs/results.md):
#   slurm/local_sweep.sh reports/ablations.md --ablations configs/ablations/synthetic.yaml
#   slurm/local_sweep.sh reports/encoders.md configs/experiment/synthetic_{str,tcmr,vibe,single_frame}.yaml
# Environment: STR_SEEDS (default "1 2 3"), STR_LIGHTNING (the command; default `str-lightning`),
# STR_PYTHON (a Python that imports str_lightning; default `python`), STR_COMPARE_ARGS (more
# compare arguments, e.g. "--layout table2").
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: slurm/local_sweep.sh OUT.md CONFIG_OR_DIR... [--ablations BENCHMARK]... [-- extra str-lightning args]" >&2
  exit 2
fi
out=$1
shift
# Each configuration is its config files, separated by tabs (given as --config, in order).
configs=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  if [ "$1" = --ablations ]; then
    if [ $# -lt 2 ] || [ ! -f "$2" ]; then
      echo "local_sweep.sh: --ablations needs a benchmark file, got '${2:-}'" >&2
      exit 2
    fi
    configs+=("$2")
    mapfile -t rows < <(compgen -G "$(dirname "$2")/rows/*.yaml" | LC_ALL=C sort)
    for row in "${rows[@]}"; do configs+=("$2"$'\t'"$row"); done
    shift
  elif [ -d "$1" ]; then
    mapfile -t -O "${#configs[@]}" configs < <(compgen -G "${1%/}/*.yaml" | LC_ALL=C sort)
  elif [ -f "$1" ]; then
    configs+=("$1")
  else
    echo "local_sweep.sh: $1 is neither a config file nor a directory of configs" >&2
    exit 2
  fi
  shift
done
[ "${1:-}" = -- ] && shift
extra=("$@")
read -r -a seeds <<< "${STR_SEEDS:-1 2 3}"
read -r -a str_lightning <<< "${STR_LIGHTNING:-str-lightning}"
read -r -a compare_args <<< "${STR_COMPARE_ARGS:-}"
python=${STR_PYTHON:-python}

# The run directory of a configuration and seed, from the CLI's own resolved config.
run_dir() {
  "${str_lightning[@]}" fit "${config_args[@]}" --seed_everything "$1" "${extra[@]}" --print_config |
    "$python" -c 'import sys, yaml
from str_lightning.runs.directory import RunDirectory
config = yaml.safe_load(sys.stdin)
print(RunDirectory.of(config["run"], config["seed_everything"]).path)'
}

run_dirs=()
for config in "${configs[@]}"; do
  IFS=$'\t' read -r -a files <<< "$config"
  config_args=()
  for file in "${files[@]}"; do config_args+=(--config "$file"); done
  for seed in "${seeds[@]}"; do
    echo "local_sweep.sh: ${config//$'\t'/ + }, seed $seed ($(date -Is))"
    "${str_lightning[@]}" fit "${config_args[@]}" --seed_everything "$seed" --ckpt_path auto "${extra[@]}"
    "${str_lightning[@]}" test "${config_args[@]}" --seed_everything "$seed" --ckpt_path best "${extra[@]}"
    run_dirs+=("$(run_dir "$seed")")
  done
done
"${str_lightning[@]}" compare "${run_dirs[@]}" --out "$out" "${compare_args[@]}"
