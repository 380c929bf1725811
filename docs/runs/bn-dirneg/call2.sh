#!/usr/bin/env bash
# Twelfth session, device call 2: the last bn-sparse run (rmt-s4, resumed) beside the rest of bn-dirneg.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
mkdir -p results/sweeps && tar xzf docs/runs/bn-sparse/sweep-state.tgz -C results/sweeps && tar xzf docs/runs/bn-dirneg/sweep-state.tgz -C results/sweeps
K="parallel=2 device=cuda train.num_workers=7 train.envs_per_worker=256 train.train_for_seconds=250 timeout_s=520 out_dir=$PWD/results/sweeps"
F="grep -v ^\[srmt\]\ [0-9.]*[kM]/\|reused\|Warning\|import\ scipy\|np.long"
timeout -s INT 330 python3 -m agents.cli sweep bottleneck-srmt-paper name=bn-sparse cores=[srmt,none,rmt,attention,gru] \
  seeds=[0,1,2,3,4] core_seeds.attention=[0,1,2] core_seeds.gru=[0,1,2] finish_by_s=${SP_S:-280} $K > "$OUT/sweep-bn-sparse.log" 2>&1 &
timeout -s INT ${DN_T:-420} python3 -m agents.cli sweep bottleneck-srmt-paper name=bn-dirneg env.reward=directional_negative \
  cores=[srmt,none] seeds=[0,1,2] finish_by_s=${DN_S:-370} $K > "$OUT/sweep-bn-dirneg.log" 2>&1
wait
grep "trained\|INCOMPLETE\|NOT_STARTED\|to go\|FAILED" "$OUT"/sweep-*.log
tar czf "$OUT/sparse.tgz" -C results/sweeps bn-sparse
tar czf "$OUT/dirneg.tgz" -C results/sweeps bn-dirneg
ls -la "$OUT"
