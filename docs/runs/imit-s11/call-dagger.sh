#!/usr/bin/env bash
# For a later session (not run yet): imitation at scale with one DAgger round, one device call (~560 s).
# Record as call1.sh (15 s), behaviour cloning for 150 s, then one round: the model plays 150 episodes in
# 15 CPU workers (about 13 s per 64-agent episode each), PIBT labels them, 120 s more training on all
# the data; then the same 4-map benchmark evaluation as call1.sh.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH SRMT_DATA=$PWD/.data
N=${N:-imit-ch-dagger}
O="name=$N env.priority_channel=true env.intention_channel=true"
t0=$(date +%s)
timeout -s INT 90 python3 -m agents.cli offline record imitation-lifelong $O record.workers=15 record.episodes=600 2>&1 | tail -2
timeout -s INT 480 python3 -m agents.cli offline train imitation-lifelong $O device=cuda record.workers=15 \
  train.steps=0 train.train_for_seconds=150 dagger.rounds=1 dagger.episodes=150 dagger.steps=0 \
  dagger.train_for_seconds=120 2>&1 | tee "$OUT/train.log" | grep -v "update [0-9]*[1-9] |" | tail -20
echo "train done at $(( $(date +%s) - t0 )) s"
R=train_dir/offline/$N
cp $R/rate.pt "$OUT/rate.pt"
timeout -s INT 100 python3 -m agents.cli eval eval/lifelong run=[RATE] algorithms.RATE.kind=rate \
  algorithms.RATE.checkpoint=$R/rate.pt algorithms.RATE.target_return=mean algorithms.RATE.action_selection=sample \
  max_maps=4 workers=15 published=false plots=false out_dir=results/$N-eval > "$OUT/eval.log" 2>&1
tar czf "$OUT/eval.tgz" -C results $N-eval
echo "all done at $(( $(date +%s) - t0 )) s"
