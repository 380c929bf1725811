#!/usr/bin/env bash
# Here, after each call.sh: `bash docs/runs/l64-controls/unpack.sh FILES_AT` (the folder the call's files
# came back to). Unpacks the sweep state into results/sweeps/l64, drops the checkpoints of runs that are
# finished and evaluated (results/RUN.json; they need not travel: the next call reuses them from their
# markers and evaluations), and writes the tables here (the GPU host's scipy does not import): the same
# sweep command, starting no run. PY: the Python of srmt's environment (default python3).
set -eu
source docs/runs/l64-controls/args.sh
mkdir -p results/sweeps
[ -f "$1/state.tgz" ] && tar xzf "$1/state.tgz" -C results/sweeps
for f in "$1"/ckpt-*.tgz; do  # a run's latest checkpoint replaces its older ones (one file to carry)
  [ -f "$f" ] || continue
  run=$(basename "$f" .tgz); rm -f "results/sweeps/l64/runs/${run#ckpt-}/checkpoint_p0/"*.pth
  tar xzf "$f" -C results/sweeps
done
for run in results/sweeps/l64/runs/*/; do
  [ -f "results/sweeps/l64/results/$(basename "$run").json" ] && rm -f "$run"checkpoint_p0/*.pth
done
cp "$1"/sweep.log results/sweeps/l64/logs/call-$(date +%H%M%S).log 2>/dev/null || true
PY=${PY:-python3}
SRMT_DATA=${SRMT_DATA:-../shared/data} $PY -m agents.cli sweep "${SWEEP_ARGS[@]}" out_dir=$PWD/results/sweeps \
  stop_after_s=0.001 || true
du -sh results/sweeps/l64
