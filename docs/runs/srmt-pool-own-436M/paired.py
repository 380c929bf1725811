"""Paired per-map difference SRMT-own - SRMT (goals per step) from results.csv, mean [95% t-interval over
maps], per map set and agent count. Run from the repository root:
python docs/runs/srmt-pool-own-436M/paired.py docs/runs/srmt-pool-own-436M/results.csv"""

import collections
import csv
import sys

import numpy as np
from scipy import stats

d = collections.defaultdict(dict)
for r in csv.DictReader(open(sys.argv[1])):
    d[r["algorithm"]][(r["map_set"], r["map_name"], int(r["num_agents"]), int(r["seed"]))] = float(
        r["avg_throughput"]
    )
counts = sorted({k[2] for k in d["SRMT"]})
print("| set | " + " | ".join(map(str, counts)) + " |\n|---|" + "---:|" * len(counts))
for ms in sorted({k[0] for k in d["SRMT"]}):
    row = []
    for n in counts:
        ks = [k for k in d["SRMT"] if k[0] == ms and k[2] == n and k in d["SRMT-own"]]
        x = np.array([d["SRMT-own"][k] - d["SRMT"][k] for k in ks])
        h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        row.append(f"{x.mean():+.3f} [{x.mean() - h:+.3f}, {x.mean() + h:+.3f}]")
    print(f"| {ms} ({len(ks)} maps) | " + " | ".join(row) + " |")
