"""Write each run's training scalars (TensorBoard) of a sweep folder as one small CSV per run.

usage: python docs/runs/cue-t-gpu-s8/export_tb.py SWEEP_FOLDER OUT_FOLDER
"""

import csv
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TAGS = (
    "episode/ISR",
    "episode/CSR",
    "episode/trapped",
    "reward/reward",
    "train/entropy",
    "train/kl_divergence",
    "train/actual_lr",
    "train/version_diff_avg",
)


def export(run: Path, out: Path) -> None:
    rows: dict[int, dict[str, float]] = {}
    for events in sorted(run.glob(".summary/0/events*")):
        ea = EventAccumulator(str(events), size_guidance={"scalars": 0})
        ea.Reload()
        for tag in TAGS:
            if tag in ea.Tags()["scalars"]:
                for e in ea.Scalars(tag):
                    rows.setdefault(e.step, {})[tag] = e.value
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("agent_steps",) + TAGS)
        for step in sorted(rows):
            w.writerow([step] + [f"{rows[step][t]:.5g}" if t in rows[step] else "" for t in TAGS])


if __name__ == "__main__":
    sweep, dest = Path(sys.argv[1]), Path(sys.argv[2])
    dest.mkdir(parents=True, exist_ok=True)
    for run in sorted((sweep / "runs").iterdir()):
        export(run, dest / f"{run.name.split('-', 2)[-1]}.tb.csv")
        print(run.name)
