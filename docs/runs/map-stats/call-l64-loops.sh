#!/usr/bin/env bash
# For the next session (not run yet): issue 9, the shipped SRMT (436.3M) trained on with mazes closer to
# 02-mazes' statistics (configs/experiment/lmapf-srmt-guided-64-loops.yaml), from its weights
# (train.init_checkpoint: fresh optimiser, the counter continuing); then evaluate on the full grid on the
# dev machine and compare paired per map with docs/runs/srmt-guided-436M-full/ (the same episodes).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
python3 -c 'import numba, envs.compiled' || exit 3   # the path channel's planner (numba from the host)
timeout -s INT 560 python3 -m agents.cli train lmapf-srmt-guided-64-loops device=cuda train.compile=default train.autocast=bf16 \
  train.train_for_seconds=${TRAIN_S:-480} train.save_every_sec=100 \
  train.init_checkpoint=configs/data/srmt-lifelong/srmt-lifelong.pth 2>&1 | tee "$OUT/train.log" | grep "^\[srmt\]" | tail -25
d=train_dir/lmapf-srmt-guided-64-loops; mkdir -p "$OUT/run/checkpoint_p0"; cp $d/config.yaml "$OUT/run/"
cp "$(ls $d/checkpoint_p0/checkpoint_*.pth | sort | tail -1)" "$OUT/run/checkpoint_p0/"
ls -la "$OUT" "$OUT/run/checkpoint_p0"
