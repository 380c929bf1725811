"""Mean episode return of a simple_spread run's policy against the same model untrained.

    python examples/pettingzoo_spread/evaluate.py train_dir/spread-srmt [--episodes 200]

The run folder alone is enough: its saved config rebuilds the env (``load_policy``).
"""

import argparse

import numpy as np

from agents.sf import load_policy, run_episodes
from agents.sf.evaluate import untrained_policy


def mean_return(net, env_cfg, episodes: int, seed: int = 1) -> float:
    rows = run_episodes(net, env_cfg, episodes, num_envs=16, seed=seed)
    return float(np.mean([r["return"] for r in rows]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="run folder (or checkpoint) written by srmt train")
    p.add_argument("--episodes", type=int, default=200)
    a = p.parse_args()
    net, exp = load_policy(a.run)
    before = untrained_policy(exp, net.obs_shape, net.num_actions)
    print(
        f"untrained: mean return per agent {mean_return(before, exp.env, a.episodes):.2f} over {a.episodes} episodes"
    )
    print(
        f"trained:   mean return per agent {mean_return(net, exp.env, a.episodes):.2f} over {a.episodes} episodes"
    )


if __name__ == "__main__":
    main()
