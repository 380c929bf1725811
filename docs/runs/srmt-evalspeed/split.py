"""Where SRMT's decision time goes, before and after the fast path (issue 9 item 4): one process, one
implementation, --impl ref (the act() before the fast path, glibc's default malloc settings) or new
(SrmtPolicy.act now, with agents.eval.runner.keep_freed_memory). Plays the given maps once each after a
warm-up episode and prints per step: the policy's act, the env's planning of the path channel and the
sum (what srmt eval reports as runtime); --save writes the actions. Run from the repository root:
  SRMT_DATA=../shared/data PYTHONPATH=$PWD python docs/runs/srmt-evalspeed/split.py --impl new --set 01-random --maps 0 1"""

import argparse
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--impl", default="new")
ap.add_argument("--set", default="01-random")
ap.add_argument("--maps", type=int, nargs="+", default=[0, 1])
ap.add_argument("--agents", type=int, default=64)
ap.add_argument("--steps", type=int, default=0)
ap.add_argument("--selection", default="sample")
ap.add_argument("--save", default="")
a = ap.parse_args()
import torch

torch.set_num_threads(1)
from agents.eval.algorithms import SrmtPolicy
from agents.eval.api import _map_sets, load_eval_config
from agents.eval.benchmark import build_instances
from agents.eval.episode import make_episode_env, run_episode
from agents.eval.runner import episode_seed, keep_freed_memory


class Ref(SrmtPolicy):
    def act(self, state):
        A = state.num_agents
        with torch.no_grad():
            obs = torch.as_tensor(np.asarray(state.observations), device=self.device)[None]
            reset = torch.full((1, A), self.first, dtype=torch.bool, device=self.device)
            active = torch.as_tensor(state.active, device=self.device)[None]
            logits, _, self.state = self.model.step(obs, self.state, reset, active, None)
            logits = logits.reshape(A, -1)
            if self.action_selection == "argmax":
                actions = logits.argmax(-1)
            else:
                actions = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=self.generator)[
                    :, 0
                ]
        self.first = False
        return actions.cpu().numpy().astype(np.int64)


class Rec:
    def __init__(self, p):
        self.p, self.actions = p, []

    def reset(self, s, seed):
        self.actions = []
        self.p.reset(s, seed)

    def act(self, s):
        t = time.perf_counter()
        x = self.p.act(s)
        self.t += time.perf_counter() - t
        self.actions.append(x)
        return x


cfg = load_eval_config(
    "eval/lifelong",
    ["run=[SRMT]", f"map_sets=[{a.set}]", f"num_agents=[{a.agents}]"]
    + ([f"max_episode_steps={a.steps}"] if a.steps else []),
)
ck = str(cfg.algorithms["SRMT"].checkpoint)
if a.impl == "new":
    keep_freed_memory()
    pol = SrmtPolicy(ck, "cpu", a.selection)
else:
    pol = Ref(ck, "cpu", a.selection)
insts = build_instances(_map_sets(cfg)[0], cfg)
insts = [insts[i] for i in a.maps]
run_episode(make_episode_env(insts[0], "envs", pol.env_config), pol, 0)  # warm-up: numba cache, first calls
out = {}
for inst in insts:
    rec = Rec(pol)
    rec.t = 0.0
    env = make_episode_env(inst, "envs", pol.env_config)
    t0 = time.perf_counter()
    m, _ = run_episode(env, rec, episode_seed(inst))
    wall = time.perf_counter() - t0
    L = m["ep_length"]
    g = env.algorithm_seconds()
    print(
        f"{a.impl} {inst.map_set} {inst.map_name} A={inst.num_agents} thr={m['avg_throughput']:.5f} "
        f"act={1000 * rec.t / L:.2f} planner={1000 * g / L:.2f} runtime={1000 * m['runtime'] / L:.2f} ms/step wall={1000 * wall / L:.2f}",
        flush=True,
    )
    out[inst.map_name] = np.stack(rec.actions)
if a.save:
    np.savez(a.save, **out)
