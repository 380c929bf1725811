"""Evaluation process of one sweep run: ``python -m agents.sweep.evaluate RUN_DIR OUT_JSON KEY_JSON``.

Plays the run's latest checkpoint on the test split of its corridor task (``evaluate_bottleneck``), as
trained and under each pool control asked for (``srmt`` runs only), and writes ``{key, eval, wall_s}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def test_lengths(env_name: str, lengths: list[int]) -> list[int]:
    """The lengths to evaluate: ``lengths`` or the task's full test split; one-line error off the corridor
    tasks."""
    from envs.bottleneck import test_corridor_lengths
    from envs.cue import CORRIDOR_TASKS

    if env_name not in CORRIDOR_TASKS:
        raise ValueError(
            f"srmt sweep evaluates the corridor tasks ({', '.join(CORRIDOR_TASKS)}); env.name={env_name!r} "
            "has no test split here (evaluate it with srmt eval)"
        )
    return [int(L) for L in lengths] or test_corridor_lengths()


test_lengths.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 3:
        print("usage: python -m agents.sweep.evaluate RUN_DIR OUT_JSON KEY_JSON", file=sys.stderr)
        return 2
    run_dir, out, key = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    import torch

    from agents.sf.checkpoint import load_policy
    from agents.sf.evaluate import evaluate_bottleneck

    torch.set_num_threads(int(key["eval_threads"]))
    t0 = time.time()
    try:
        net, exp = load_policy(run_dir, key["eval_device"])
        lengths = test_lengths(exp.env.name, key["lengths"])
        controls = ["shared"] + (list(key["controls"]) if exp.model.core == "srmt" else [])
        results = {}
        for pool in controls:
            results[pool] = evaluate_bottleneck(
                (net, exp),
                lengths,
                int(key["episodes"]),
                key["eval_device"],
                seed=int(key["eval_seed"]),
                num_envs=int(key["eval_envs"]),
                deterministic=key["action_selection"] == "argmax",
                pool=pool,
            )
            print(f"[srmt sweep] {run_dir.name} pool={pool}: {time.time() - t0:.0f} s", flush=True)
    except (ValueError, FileNotFoundError) as e:
        print(f"srmt sweep: {run_dir.name}: {e}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(key=key, eval=results, wall_s=time.time() - t0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
