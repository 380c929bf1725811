"""Per-run test CSR (mean over the lengths) per pool control, from a sweep's runs.csv.

usage: python docs/runs/cue-t-gpu-s8/per_run.py SWEEP_FOLDER/runs.csv
"""

import csv
import sys
from collections import defaultdict
from statistics import mean

rows = list(csv.DictReader(open(sys.argv[1])))
by: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
for r in rows:
    by[(r["core"], int(r["seed"]))][r["control"]].append(float(r["CSR"]))
print("| run | " + " | ".join(("shared", "own", "other")) + " |")
print("|---|---:|---:|---:|")
for (core, seed), pools in sorted(
    by.items(), key=lambda kv: (("srmt", "rmt", "none").index(kv[0][0]), kv[0][1])
):
    cells = [f"{mean(pools[p]):.3f}" if p in pools else "" for p in ("shared", "own", "other")]
    print(f"| `{core}` s{seed} | " + " | ".join(cells) + " |")
