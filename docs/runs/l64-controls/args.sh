# The issue-9 item-5 sweep ("Does sharing help here?"), sourced by call.sh (GPU host) and unpack.sh (here):
# the same arguments on both sides, so that both plan the same runs and evaluation keys.
# Training: 3 cores x 3 seeds x 3e7 agent-steps of the 64-agent guided recipe, one run at a time with all
# 14 rollout workers (at most one unfinished run per call: one checkpoint to carry), no torch.compile (a
# short run would spend more on compiling at each start than it gains), 150 s of training per process (an unfinished run resumes from its own checkpoint in the next call), no new run after 300 s.
# Evaluation: each finished run on the first 32 maps of 01-random and 02-mazes at 32 and 64 agents (128
# episodes, frozen scenarios) with 16 CPU worker processes, between two trainings.
SWEEP_ARGS=(
  lmapf-srmt-guided-64 name=l64 cores=[srmt,rmt,none] seeds=[0,1,2]
  train.train_for_env_steps=30000000 device=cuda "train.compile='off'"
  parallel=1 train.train_for_seconds=150 stop_after_s=300 timeout_s=420
  eval_config=eval/lifelong max_maps=32 num_agents=[32,64] eval_workers=16
)
