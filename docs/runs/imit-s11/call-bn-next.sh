#!/usr/bin/env bash
# For the next session (not run yet): the last 2 bn-sparse runs (none-s4, rmt-s4; one pair, ~180 s), then
# the directional_negative sweep (issue 17 item 2: srmt, none x 3 seeds) for the rest of the call. Repeat
# (with docs/runs/bn-dirneg/sweep-state.tgz updated from the returned dirneg.tgz) until nothing is to go;
# then write the tables on the dev machine with the same commands and stop_after_s=0.001.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
mkdir -p results/sweeps && tar xzf docs/runs/bn-sparse/sweep-state.tgz -C results/sweeps
[ -f docs/runs/bn-dirneg/sweep-state.tgz ] && tar xzf docs/runs/bn-dirneg/sweep-state.tgz -C results/sweeps
t0=$(date +%s)
K="parallel=2 device=cuda train.num_workers=7 train.envs_per_worker=256 train.train_for_seconds=250 timeout_s=520 out_dir=$PWD/results/sweeps"
timeout -s INT 300 python3 -m agents.cli sweep bottleneck-srmt-paper name=bn-sparse cores=[srmt,none,rmt,attention,gru] \
  seeds=[0,1,2,3,4] core_seeds.attention=[0,1,2] core_seeds.gru=[0,1,2] finish_by_s=240 $K 2>&1 \
  | tee "$OUT/sweep-bn-sparse.log" | grep -v "^\[srmt\] [0-9.]*[kM]/\|reused" | grep -v "Warning\|import scipy\|np.long" | tail -8
left=$(( ${CALL_S:-550} - ($(date +%s) - t0) ))
timeout -s INT $left python3 -m agents.cli sweep bottleneck-srmt-paper name=bn-dirneg env.reward=directional_negative \
  cores=[srmt,none] seeds=[0,1,2] finish_by_s=$((left - 50)) $K 2>&1 \
  | tee "$OUT/sweep-bn-dirneg.log" | grep -v "^\[srmt\] [0-9.]*[kM]/\|reused" | grep -v "Warning\|import scipy\|np.long" | tail -8
sleep 2
tar czf "$OUT/sparse.tgz" -C results/sweeps bn-sparse
tar czf "$OUT/dirneg.tgz" -C results/sweeps bn-dirneg
ls -la "$OUT"
