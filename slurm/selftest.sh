#!/usr/bin/env bash
# Run the SLURM templates on a real, private, single-node SLURM (Debian's slurm-wlm + munge).
#
#   slurm/selftest.sh            (as root; installs slurm-wlm and munge with apt-get if missing)
#
# Starts munged, slurmctld and slurmd with a configuration, keys, sockets, state and logs in a
# temporary directory (2 CPUs, partition "debug"), then checks on the synthetic benchmark:
#   1. train.sbatch with 2 tasks (DDP over Gloo on CPU) completes, and test.sbatch (chained with
#      --dependency=afterok) reports test metrics from the best checkpoint;
#   2. preemption: `scancel --signal=USR1` on a running training job -> hpc checkpoint saved,
#      job requeued, resumed and completed with a continuous global step;
#   3. ablations.sbatch as a 2-task array (the full model and row 1, seed 1) -> two run
#      directories, row 1's with its component off.
# It stops only the daemons it started (by PID) and prints a summary; exit 0 iff all passed.
# Environment: PYTHON (an interpreter with str-lightning's dependencies; default: the repo's
# .venv, else python3), STR_SELFTEST_KEEP=1 keeps the temporary directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
started_at=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/str-slurm-selftest.XXXXXX")
chmod 700 "$work"
daemon_pids=()
submitted_jobs=()
results=()
failures=0

log() { printf '[selftest %4ds] %s\n' $(( $(date +%s) - started_at )) "$*"; }
pass() { results+=("PASS  $*"); log "PASS: $*"; }
fail() { results+=("FAIL  $*"); failures=$((failures + 1)); log "FAIL: $*"; }

cleanup() {
  local status=$?
  if [ ${#submitted_jobs[@]} -gt 0 ] && command -v scancel >/dev/null; then
    scancel "${submitted_jobs[@]}" 2>/dev/null || true
    sleep 2
  fi
  # Reverse start order: slurmd, slurmctld, munged. Only the PIDs this script started.
  for (( i=${#daemon_pids[@]}-1; i>=0; i-- )); do
    kill "${daemon_pids[$i]}" 2>/dev/null || true
  done
  for pid in "${daemon_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  if [ "${STR_SELFTEST_KEEP:-0}" = 1 ] || [ "$status" -ne 0 ] || [ "$failures" -ne 0 ]; then
    log "kept $work (logs in $work/log and $work/jobs)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# ----------------------------------------------------------------------------- installation

install_slurm() {
  local missing=()
  for tool in munged slurmctld slurmd sbatch; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "selftest: ${missing[*]} missing; run as root (apt-get install slurm-wlm munge)" >&2
    exit 2
  fi
  log "installing slurm-wlm and munge (missing: ${missing[*]})"
  apt-get update -q
  apt-cache show slurm-wlm munge >/dev/null
  # The packages' init scripts must not start system-wide daemons: we start our own.
  printf '#!/bin/sh\nexit 101\n' > "$work/policy-rc.d"
  chmod +x "$work/policy-rc.d"
  local had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy = 1 ] || cp "$work/policy-rc.d" /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
  [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
}

# ----------------------------------------------------------------------------- the cluster

start_daemon() {  # start_daemon NAME COMMAND...: run a foreground daemon in the background
  local name=$1
  shift
  "$@" > "$work/log/$name.out" 2>&1 &
  daemon_pids+=("$!")
  log "started $name (pid $!)"
}

start_cluster() {
  mkdir -p "$work"/{munge,state,spool,log,jobs,runs}
  chmod 700 "$work/munge"
  dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$work/munge/munge.key"
  local socket="$work/munge/munge.socket"
  start_daemon munged munged --foreground --force --socket="$socket" \
    --key-file="$work/munge/munge.key" --pid-file="$work/munge/munged.pid" \
    --log-file="$work/log/munged.log" --seed-file="$work/munge/munged.seed"

  local memory_mb ctld_port
  memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
  ctld_port=${STR_SELFTEST_PORT:-16817}
  cat > "$work/slurm.conf" <<EOF
ClusterName=strselftest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
JobRequeue=1
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$work/slurm.conf"
  for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
  start_daemon slurmctld slurmctld -D -c -i -f "$SLURM_CONF"
  start_daemon slurmd slurmd -D -N localhost -f "$SLURM_CONF"

  local state=""
  for _ in $(seq 60); do
    state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 1
  done
  if [ "$state" != idle ]; then
    log "node never became idle (state: '${state}'); daemon logs:"
    tail -n 20 "$work"/log/*
    exit 1
  fi
  log "cluster up: $(sinfo -h -o '%P %D node(s) %c CPUs %T')"
}

# ----------------------------------------------------------------------------- job helpers

job_field() {  # job_field JOB FIELD: a field of `scontrol show job` (array tasks: JOB=<id>_<task>)
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

wait_for_job() {  # wait_for_job JOB TIMEOUT: until a final state; prints it
  local job=$1 deadline=$(( $(date +%s) + $2 )) state=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    state=$(job_field "$job" JobState)
    case "$state" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)
        echo "$state"; return 0 ;;
    esac
    sleep 2
  done
  echo "STILL-${state:-UNKNOWN}"
}

submit() {  # submit SBATCH_ARGS...: prints the job id
  local id
  id=$(cd "$repo" && sbatch --parsable --chdir="$repo" --output="$work/jobs/%x-%j.out" "$@")
  id=${id%%;*}
  submitted_jobs+=("$id")
  echo "$id"
}

checkpoint_step() {  # checkpoint_step FILE: its global_step
  "$python" -c 'import sys, torch; print(torch.load(sys.argv[1], map_location="cpu", weights_only=True)["global_step"])' "$1"
}

# ----------------------------------------------------------------------------- the checks

make_data() {
  local data=$work/synthetic
  if ! (cd "$repo" && $str synth --preset small --out "$data" --quiet) > "$work/log/synth.out" 2>&1; then
    # until `str-lightning synth` is wired into the CLI: the generator directly
    (cd "$repo" && "$python" -c 'import sys
from datamodules.synthetic.generate import generate
from datamodules.synthetic.presets import get_preset
generate(sys.argv[1], get_preset("small"), 0, overwrite=True, progress=False)' "$data") \
      >> "$work/log/synth.out" 2>&1
  fi
  cat > "$work/selftest.yaml" <<EOF
# The synthetic benchmark in this self-test's directory, at widths that train in seconds.
run: {root: $work/runs}
trainer: {max_epochs: 100, enable_progress_bar: false, enable_model_summary: false, log_every_n_steps: 5,
          use_distributed_sampler: false, num_sanity_val_steps: 0}
model:
  init_args:
    encoder:
      init_args: {hidden_size: 16, num_layers: 1, integration_hidden_size: 16}
    regressor_hidden_size: 32
    monitor: val/synthetic/pa_mpjpe
    eval_protocols: {synthetic-dark: synthetic}
data:
  root: $data  # every split of configs/data/synthetic.yaml, read below this directory
  batch_size: 8
  steps_per_epoch: 10
  # Workers start from a forkserver, never forked from a DDP rank (docs/slurm.md).
  num_workers: 2
EOF
  log "synthetic data in $data"
}

check_train_then_test() {
  local run=(configs/experiment/synthetic_str.yaml --config "$work/selftest.yaml"
             --run.experiment=ddp --trainer.max_steps=30)
  local train test state
  train=$(submit --job-name=selftest-train --ntasks-per-node=2 --cpus-per-task=1 \
          slurm/train.sbatch "${run[@]}")
  test=$(submit --job-name=selftest-test --dependency=afterok:"$train" --cpus-per-task=1 \
         slurm/test.sbatch "${run[@]}")
  log "1. train job $train (2 tasks), test job $test after it"
  state=$(wait_for_job "$train" 600)
  local run_dir=$work/runs/synthetic/ddp/seed0  # the default seed_everything
  local last=$run_dir/checkpoints/last.ckpt
  if [ "$state" = COMPLETED ] && [ -f "$last" ] && [ "$(checkpoint_step "$last")" = 30 ]; then
    pass "train.sbatch: 2-task DDP job $train completed, global step 30 ($(job_field "$train" RunTime))"
  else
    fail "train.sbatch: job $train state $state, see $work/jobs/selftest-train-$train.out"
  fi
  state=$(wait_for_job "$test" 300)
  local out=$work/jobs/selftest-test-$test.out
  # the console's per-dataset tables: "test · <dataset> · <n> frames", then "PA-MPJPE <x> mm"
  if [ "$state" = COMPLETED ] && grep -q "^test · synthetic · " "$out" \
     && grep -q "^test · synthetic-dark · " "$out"; then
    pass "test.sbatch: job $test tested the best checkpoint: synthetic $(grep -A1 "^test · synthetic · " "$out" | grep -m1 -o 'PA-MPJPE *[0-9.]* mm' | tr -s ' ')"
  else
    fail "test.sbatch: job $test state $state, see $out"
  fi
}

check_preemption() {
  local run=(configs/experiment/synthetic_str.yaml --config "$work/selftest.yaml"
             --run.experiment=preempt --trainer.max_steps=60
             --trainer.callbacks+=callbacks.preemption.PreemptionCheckpoint)
  local job run_dir=$work/runs/synthetic/preempt/seed0
  job=$(submit --job-name=selftest-preempt --ntasks-per-node=2 --cpus-per-task=1 \
        slurm/train.sbatch "${run[@]}")
  log "2. preemption: job $job; waiting for its first checkpoint (step 10)"
  local deadline=$(( $(date +%s) + 300 ))
  until compgen -G "$run_dir/checkpoints/*.ckpt" >/dev/null; do
    case "$(job_field "$job" JobState)" in PENDING|CONFIGURING|RUNNING) ;; *) deadline=0 ;; esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail "preemption: job $job never checkpointed (state $(job_field "$job" JobState))"
      return
    fi
    sleep 0.5
  done
  scancel --signal=USR1 "$job"
  log "2. sent SIGUSR1 to job $job's tasks"
  # SLURM holds a requeued batch job for about two minutes (its BeginTime); skip that here.
  for _ in $(seq 120); do
    [ "$(job_field "$job" Restarts)" = 1 ] && [ "$(job_field "$job" JobState)" = PENDING ] && break
    sleep 0.5
  done
  log "2. job $job requeued: $(job_field "$job" JobState), Restarts=$(job_field "$job" Restarts); starting it now"
  scontrol update JobId="$job" StartTime=now
  local state
  state=$(wait_for_job "$job" 900)
  # The preemption saves hpc_ckpt_1; the SIGTERM with which `scontrol requeue` ends the job may
  # save hpc_ckpt_2 a step or two later; the resumed job starts from the newest and removes older.
  local out=$work/jobs/selftest-preempt-$job.out hpc
  hpc=$( (compgen -G "$run_dir/hpc_ckpt_*.ckpt" || true) | sort -V | tail -n 1)
  local restarts saved final resumed_from
  restarts=$(job_field "$job" Restarts)
  saved=$( [ -n "$hpc" ] && checkpoint_step "$hpc" || echo none)
  final=$( [ -f "$run_dir/checkpoints/last.ckpt" ] && checkpoint_step "$run_dir/checkpoints/last.ckpt" || echo none)
  # The resumed segment's first logged training step (its own CSV version directory).
  resumed_from=$("$python" -c 'import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(min(int(r["step"]) for r in rows if r.get("train/loss")))' "$run_dir/csv/version_1/metrics.csv" 2>/dev/null || echo none)
  if [ "$state" = COMPLETED ] && [ "$restarts" = 1 ] && [ "$saved" != none ] \
     && [ "$saved" -ge 10 ] && [ "$saved" -lt 60 ] && [ "$final" = 60 ] \
     && [ "$resumed_from" != none ] && [ "$resumed_from" -ge "$saved" ] \
     && [ "$resumed_from" -le $((saved + 5)) ] \
     && grep -q "hpc_ckpt_1.ckpt" "$out" && grep -q "requeued SLURM job $job" "$out"; then
    pass "preemption: job $job saved hpc_ckpt_1, requeued (Restarts=$restarts), resumed from $(basename "$hpc") (step $saved; first logged step $resumed_from) and finished at step $final"
  else
    fail "preemption: job $job state $state, Restarts=$restarts, hpc step $saved, resumed at $resumed_from, final step $final; see $out"
  fi
}

check_ablations() {
  # Tasks 0 and 3 of 7 rows x seeds 1 2 3: the full model and row 1 on top of it, both seed 1.
  local job
  job=$(submit --job-name=selftest-ablation --array=0,3 --cpus-per-task=1 \
        --output="$work/jobs/%x-%A_%a.out" slurm/ablations.sbatch configs/ablations/synthetic.yaml \
        --config "$work/selftest.yaml" --trainer.accelerator=cpu --trainer.max_steps=20 \
        --trainer.callbacks="[{class_path: lightning.pytorch.callbacks.ModelCheckpoint, init_args: {save_last: true}}]")
  log "3. ablations: array job $job, rows 0 and 1 x seed 1"
  local ok=1 task state row experiment run_dir switch made=()
  local row_one
  row_one=$(compgen -G "$repo/configs/ablations/rows/*.yaml" | LC_ALL=C sort | head -n 1)
  for task in 0 3; do
    row=$repo/configs/ablations/synthetic.yaml
    [ "$task" = 3 ] && row=$row_one
    experiment=$(sed -n 's/^run: *{.*experiment: *\([A-Za-z0-9_]*\)}.*/\1/p' "$row")
    # row 1's own switch (the first use_*: false of its file) is in the run's saved config
    switch=$(grep -o 'use_[a-z_]*: false' "$row" | head -n 1 || true)
    state=$(wait_for_job "${job}_$task" 600)
    run_dir=$work/runs/ablations-synthetic/$experiment/seed1
    if [ "$state" != COMPLETED ] || [ ! -f "$run_dir/checkpoints/last.ckpt" ] \
       || [ "$(checkpoint_step "$run_dir/checkpoints/last.ckpt")" != 20 ] \
       || { [ -n "$switch" ] && ! grep -q "$switch" "$run_dir/cli_config.yaml"; }; then
      ok=0
      fail "ablations: task ${job}_$task state $state, no step-20 checkpoint${switch:+ with $switch} in ablations-synthetic/$experiment/seed1; see $work/jobs/selftest-ablation-${job}_$task.out"
    fi
    made+=("$experiment/seed1${switch:+ ($switch)}")
  done
  [ $ok = 1 ] && pass "ablations.sbatch: array $job tasks 0 and 3 -> ${made[*]}"
}

# ----------------------------------------------------------------------------- main

python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then python=$repo/.venv/bin/python; else python=$(command -v python3); fi
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
if ! "$python" -c 'import torch, lightning, str_lightning' 2>/dev/null; then
  echo "selftest: $python cannot import torch, lightning and str_lightning; set PYTHON to the" \
       "interpreter of an environment with str-lightning installed (README)" >&2
  exit 2
fi
export STR_LIGHTNING="$python -m str_lightning"
export STR_ACCELERATOR=cpu
export WANDB_MODE=disabled
str="$python -m str_lightning"

install_slurm
start_cluster
make_data
check_train_then_test
check_preemption
check_ablations

echo
echo "===== SLURM self-test summary ($(sinfo --version), $(( $(date +%s) - started_at )) s) ====="
printf '%s\n' "${results[@]}"
[ "$failures" -eq 0 ] && echo "ALL PASSED" || echo "$failures FAILED"
exit $(( failures > 0 ))
