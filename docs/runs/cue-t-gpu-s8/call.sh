#!/usr/bin/env bash
# One device call of the Cue T-junction sweep (eighth session): install the wheel bundle, run (or resume)
# the sweep inside the 10-minute call, bring the sweep folder back as one tarball. The evaluation here is
# a token one (L=3, 4 episodes); the test split with the pool controls is evaluated on the dev CPU.
# usage (device, repo root): bash docs/runs/cue-t-gpu-s8/call.sh EXPERIMENT NAME PARALLEL "CORES" "SEEDS" [sweep keys...]
set -u
exp=$1; name=$2; par=$3; cores=$4; seeds=$5; shift 5
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
sweeps=$PWD/results/sweeps
if [ -f "$name.tar.gz" ]; then mkdir -p "$sweeps" && tar -xzf "$name.tar.gz" -C "$sweeps"; fi
( sleep 150; { nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv; free -g; uptime; } > "$OUT/host-$name.txt" 2>&1 ) &
timeout -s INT "${SWEEP_TIMEOUT:-565}" python3 -m agents.cli sweep "$exp" name="$name" cores="[$cores]" seeds="[$seeds]" \
  parallel="$par" device=cuda lengths=[3] episodes=4 out_dir="$sweeps" "$@" 2>&1 \
  | tee "$OUT/sweep-$name.log" | grep -v "^\[srmt\] [0-9.]*[kM]/" | grep -v "Warning\|import scipy\|np.long" | tail -30
sleep 3
tar -czf "$OUT/$name.tar.gz" -C "$sweeps" "$name"
ls -la "$OUT"
