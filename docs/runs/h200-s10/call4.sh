#!/usr/bin/env bash
# Tenth session, device call 4: two more runs of the bn-sparse sweep (issue 17 item 2), then the training
# bench at batch 131072 with the whole BPTT window compiled (issue 16), `none` at the same batch in the same call.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
mkdir -p results/sweeps && tar xzf docs/runs/bn-sparse/sweep-state.tgz -C results/sweeps
timeout -s INT 300 python3 -m agents.cli sweep bottleneck-srmt-paper name=bn-sparse cores=[srmt,none,rmt,attention,gru] seeds=[0,1,2,3,4] \
  core_seeds.attention=[0,1,2] core_seeds.gru=[0,1,2] parallel=2 device=cuda train.num_workers=7 \
  train.envs_per_worker=256 train.train_for_seconds=250 stop_after_s=200 timeout_s=520 out_dir=$PWD/results/sweeps 2>&1 \
  | tee "$OUT/sweep-bn-sparse.log" | grep -v "^\[srmt\] [0-9.]*[kM]/" | grep -v "Warning\|import scipy\|np.long" | tail -30
sleep 2
tar czf "$OUT/sweeps.tgz" -C results/sweeps bn-sparse
B='train.batch_size=131072;train.policy_workers=2'; C='model.core=srmt;model.history_dim=16;model.state_precision=bfloat16'; K='train.compile=default;train.autocast=bf16'
timeout -s INT 255 python3 -m agents.cli bench train --workers 14 --envs-per-worker 16 --seconds 28 --startup 32 --device cuda \
  --run "none-b128k:model.core=none;$B" --run "seq-b128k:$C;$B;$K;train.compile_scope=sequence;train.train_for_seconds=170" \
  --json "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
tail -60 "$OUT/bench.txt" | grep -v "^\[srmt\] [0-9.]*[kM]/"
ls -la "$OUT"
