"""Evaluation process of one sweep run: ``python -m agents.sweep.evaluate RUN_DIR OUT_JSON KEY_JSON [OPTIONS_JSON]``.

Plays the checkpoint named in the key (``checkpoint``, relative to the run folder) through the suite of
the run's env (:func:`agents.sweep.suites.suite_for`): a corridor task on its test split (as trained and
under each pool control asked for, ``srmt`` runs only), a POGEMA env on map sets through ``srmt eval``;
writes ``{key, eval, wall_s}``. OPTIONS_JSON holds settings that do not change the results (workers, the
map-set evaluation's folder).
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
            f"corridor lengths exist for the corridor tasks ({', '.join(CORRIDOR_TASKS)}); env.name={env_name!r} "
            "has no test split of lengths"
        )
    return [int(L) for L in lengths] or test_corridor_lengths()


test_lengths.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) not in (3, 4):
        print(
            "usage: python -m agents.sweep.evaluate RUN_DIR OUT_JSON KEY_JSON [OPTIONS_JSON]", file=sys.stderr
        )
        return 2
    run_dir, out, key = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    options = json.loads(argv[3]) if len(argv) == 4 else {}
    t0 = time.time()
    try:
        checkpoint = run_dir / key["checkpoint"]
        if not checkpoint.is_file():
            raise FileNotFoundError(
                f"checkpoint {key['checkpoint']} is not in the run folder (a finished run's checkpoint that was "
                "not copied back cannot be evaluated again)"
            )
        import yaml

        from agents.config import load_experiment
        from agents.sweep.suites import suite_for

        exp = load_experiment(yaml.safe_load((run_dir / "config.yaml").read_text()))
        suite = suite_for(exp.env.name)
        results = suite.evaluate(run_dir, checkpoint, key, options, lambda s: print(s, flush=True))
    except (ValueError, FileNotFoundError) as e:
        print(f"srmt sweep: {run_dir.name}: {e}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(key=key, eval=results, wall_s=time.time() - t0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
