#!/usr/bin/env bash
# Eleventh session, device calls 2-3: more runs of the bn-sparse sweep (issue 17 item 2), two at once,
# `finish_by_s` so that the call is used to its end (a cut run resumes from its checkpoint next call).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
mkdir -p results/sweeps && tar xzf docs/runs/bn-sparse/sweep-state.tgz -C results/sweeps
timeout -s INT ${SWEEP_TIMEOUT:-550} python3 -m agents.cli sweep bottleneck-srmt-paper name=bn-sparse cores=[srmt,none,rmt,attention,gru] seeds=[0,1,2,3,4] \
  core_seeds.attention=[0,1,2] core_seeds.gru=[0,1,2] parallel=2 device=cuda train.num_workers=7 \
  train.envs_per_worker=256 train.train_for_seconds=250 finish_by_s=${FINISH_BY:-470} timeout_s=520 out_dir=$PWD/results/sweeps 2>&1 \
  | tee "$OUT/sweep-bn-sparse.log" | grep -v "^\[srmt\] [0-9.]*[kM]/" | grep -v "Warning\|import scipy\|np.long" | tail -30
sleep 2
tar czf "$OUT/sweeps.tgz" -C results/sweeps bn-sparse
ls -la "$OUT"
