"""Can a core carry the Cue's side through the corridor? A supervised probe (no RL).

Episodes of the scripted ``memory`` policy on ``cue`` (train split), concatenated per stream; truncated
BPTT in chunks of T steps with the state carried (detached) as sample-factory does; a linear probe on the
core's features predicts the agent's side at every step after the first that the agent spends in the
corridor's column (there its position says nothing about the side). Prints the held-out accuracy.

    python docs/runs/cue-t-s7/probe.py CORE [ITERS]      # CORE: srmt, rmt, gru, none, attention
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from agents.cue_policies import ScriptedCuePolicy  # noqa: E402
from envs import make_env  # noqa: E402
from envs.cue import CORRIDOR_COL, cue_config  # noqa: E402
from srmt.config import ModelConfig  # noqa: E402
from srmt.model import build_actor_critic  # noqa: E402


def one_stream(steps: int, lengths, rng: np.random.Generator, policy: ScriptedCuePolicy):
    obs_l, reset_l, side_l, mask_l = [], [], [], []
    while len(obs_l) < steps:
        length = int(rng.choice(lengths))
        env = make_env(cue_config(length, split="train", num_agents=2), seed=int(rng.integers(1 << 30)))
        obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
        policy.reset(env, obs)
        side = (env.sides > 0).astype(np.int64)
        t = 0
        while True:
            obs_l.append(obs.copy())
            reset_l.append(np.full(2, t == 0))
            side_l.append(side)
            mask_l.append(env.active & (t >= 1) & (env.agents_xy()[:, 1] == CORRIDOR_COL))
            obs, _, term, trunc, _ = env.step(policy.act(env))
            t += 1
            if np.all(np.asarray(term) | np.asarray(trunc)):
                break
    return [np.stack(x[:steps]) for x in (obs_l, reset_l, side_l, mask_l)]


def streams(num: int, steps: int, lengths, seed: int):
    """obs [G, A, T, C, H, W], reset, side, mask [G, A, T]."""
    rng = np.random.default_rng(seed)
    policy = ScriptedCuePolicy("memory", seed)
    parts = list(zip(*(one_stream(steps, lengths, rng, policy) for _ in range(num))))

    def to_tensor(xs):
        return torch.from_numpy(np.stack(xs)).transpose(1, 2).contiguous()  # [G, T, A, ...] -> [G, A, T, ...]

    obs, reset, side, mask = (to_tensor(p) for p in parts)
    return obs.float(), reset.bool(), side, mask.bool()


def main(core: str, iters: int = 600, chunk: int = 32, seed: int = 0, lengths=(3, 4, 5, 6, 7, 8)) -> None:
    torch.manual_seed(seed)
    obs, reset, side, mask = streams(32, 2048, lengths, seed)
    t_obs, t_reset, t_side, t_mask = streams(16, 512, lengths, seed + 1000)
    cfg = ModelConfig(core=core, hidden_size=16, num_heads=4, num_layers=1, num_filters=8, num_res_blocks=1)
    model = build_actor_critic(cfg, tuple(obs.shape[3:]), 5)
    probe = torch.nn.Linear(16, 2)
    opt = torch.optim.Adam([*model.parameters(), *probe.parameters()], lr=1e-3)
    G, A, T = obs.shape[:3]
    start = time.time()

    def run(o, r, state):
        features, state = model.core.sequence(model.encoder(o), state, r)
        return probe(features), state

    it = 0
    while it < iters:
        state = model.initial_state(G, A)
        for c in range(0, T, chunk):
            logits, state = run(obs[:, :, c : c + chunk], reset[:, :, c : c + chunk], state)
            state = state.detach()
            m = mask[:, :, c : c + chunk]
            loss = torch.nn.functional.cross_entropy(logits[m], side[:, :, c : c + chunk][m])
            opt.zero_grad()
            loss.backward()
            opt.step()
            it += 1
            if it % 100 == 0 or it == iters:
                with torch.no_grad():
                    held, _ = run(t_obs, t_reset, model.initial_state(*t_obs.shape[:2]))
                    acc = (held.argmax(-1) == t_side)[t_mask].float().mean().item()
                print(
                    f"{core} it {it} loss {loss.item():.3f} held-out accuracy {acc:.3f} ({time.time() - start:.0f}s)"
                )
            if it >= iters:
                break


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 600)
