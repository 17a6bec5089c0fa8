#!/usr/bin/env bash
# Upload offline W&B runs to the W&B server. Run it on a login node (compute nodes need no
# network: training writes <run dir>/wandb/offline-run-* with configs/logger/wandb_offline.yaml).
#
#   slurm/sync_wandb.sh [--dry-run] [--watch SECONDS] [DIR ...]
#
# DIR: run directories or any folder above them (default: runs). Every offline run found below
# is synced once; wandb marks a synced run with run-<id>.wandb.synced, and those are skipped, so
# the script can be re-run (or left running with --watch) while jobs are still training — a
# running segment is uploaded as far as it got and again, completely, on a later pass.
# Each SLURM segment (requeue) is its own W&B run: they share the group and their names end in
# -r<restart count> (offline runs cannot be resumed or merged; see docs/wandb.md).
# Needs `wandb login` (or WANDB_API_KEY) on this machine.
set -euo pipefail

dry_run=0
watch=0
dirs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --watch) watch=${2:?--watch needs a number of seconds}; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) dirs+=("$1") ;;
  esac
  shift
done
[ ${#dirs[@]} -gt 0 ] || dirs=(runs)

sync_pass() {
  local found=0 run file
  while IFS= read -r -d '' run; do
    found=1
    file=$(find "$run" -maxdepth 1 -name 'run-*.wandb' -print -quit)
    if [ -z "$file" ]; then
      echo "skip (no run-*.wandb yet): $run"
    elif [ -e "$file.synced" ] && [ "$file.synced" -nt "$file" ]; then
      echo "already synced: $run"
    elif [ "$dry_run" = 1 ]; then
      echo "would sync: $run"
    else
      echo "sync: $run"
      wandb sync "$run" || echo "sync_wandb.sh: failed to sync $run (will retry next pass)" >&2
    fi
  done < <(find "${dirs[@]}" -type d -name 'offline-run-*' -path '*/wandb/*' -print0 | sort -z)
  [ "$found" = 1 ] || echo "no offline W&B runs under: ${dirs[*]}"
}

sync_pass
while [ "$watch" -gt 0 ]; do
  sleep "$watch"
  sync_pass
done
