#!/usr/bin/env bash
# Eleventh session, device call 1 (issue 14 items 2-3, issue 9): imitation of PIBT at scale on the GPU host.
# 64 agents on generated 20x20 maps (random or maze), the path + priority + intention channels, PIBT's own
# actions as targets; record 600 episodes with 15 workers, train 330 s on the GPU, then evaluate on the
# first 4 maps of each benchmark set (all 6 agent counts) with 15 CPU workers.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH SRMT_DATA=$PWD/.data
python3 -c 'import numba, envs.compiled; print("numba", numba.__version__)'
N=${N:-imit-ch}; EPIS=${EPIS:-600}; TRAIN_S=${TRAIN_S:-330}; INIT=${INIT:-}
O="name=$N env.priority_channel=true env.intention_channel=true"
t0=$(date +%s)
timeout -s INT 120 python3 -m agents.cli offline record imitation-lifelong $O record.workers=15 record.episodes=$EPIS 2>&1 | tee "$OUT/record.log" | tail -4
echo "record done at $(( $(date +%s) - t0 )) s"
timeout -s INT $((TRAIN_S + 90)) python3 -m agents.cli offline train imitation-lifelong $O device=cuda train.steps=0 \
  train.train_for_seconds=$TRAIN_S ${INIT:+train.init_checkpoint=$INIT} 2>&1 | tee "$OUT/train.log" | awk 'NR % 10 == 1' | tail -25
tail -2 "$OUT/train.log"
echo "train done at $(( $(date +%s) - t0 )) s"
R=train_dir/offline/$N
cp $R/rate.pt "$OUT/rate.pt"; cp $R/dataset/dataset.json "$OUT/dataset.json"
timeout -s INT ${EVAL_S:-100} python3 -m agents.cli eval eval/lifelong run=[RATE] algorithms.RATE.kind=rate \
  algorithms.RATE.checkpoint=$R/rate.pt algorithms.RATE.target_return=mean algorithms.RATE.action_selection=sample \
  max_maps=${MAPS:-4} workers=15 published=false plots=false out_dir=results/$N-eval 2>&1 | tee "$OUT/eval.log" | tail -30
tar czf "$OUT/eval.tgz" -C results $N-eval
echo "all done at $(( $(date +%s) - t0 )) s"
ls -la "$OUT"
