#!/usr/bin/env bash
# One call of the l64 controls sweep on the device host (one H200, 16 cores, 10 minutes a call), from the
# repository root: `bash docs/runs/l64-controls/call.sh`, carry [".whl", ".devdata", "results/sweeps/l64"]
# (the last absent on the first call), timeout_s 600. Repeat (after unpack.sh here) until the log says no
# "run(s) to go". docs/training.md ("Does sharing help here?").
set -u
source docs/runs/l64-controls/args.sh
[ -d /tmp/site/numpy ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 SRMT_DATA=$PWD/.devdata
python3 -c 'import numpy, numba, torch, envs.compiled; print(numpy.__version__, torch.cuda.is_available())' || exit 4
mkdir -p results/sweeps
# SIGINT to the whole sweep after 530 s: the runs finished so far are kept, a training saves its checkpoint,
# an evaluation keeps its episodes; the packing below always runs
timeout -s INT -k 20 530 python3 -m agents.cli sweep "${SWEEP_ARGS[@]}" out_dir=$PWD/results/sweeps 2>&1 \
  | grep -v "Warning\|warnings.warn" | tee $OUT/sweep.log
# What the next call needs, within $OUT's limits (8 files, 16 MiB each): the sweep folder without
# checkpoints (a finished, evaluated run is reused from its marker and its evaluation) and the latest
# checkpoint of each run not yet finished or evaluated (no results/RUN.json), one file each
tar czf $OUT/state.tgz -C results/sweeps --exclude='*.pth' --exclude=sf_log.txt l64
for run in results/sweeps/l64/runs/*/; do
  [ -f "results/sweeps/l64/results/$(basename "$run").json" ] && continue
  ck=$(ls "$run"checkpoint_p0/checkpoint_*.pth 2>/dev/null | sort | tail -1)
  [ -n "$ck" ] && tar czf "$OUT/ckpt-$(basename "$run").tgz" -C results/sweeps "${ck#results/sweeps/}"
done
ls -la $OUT
