"""Action selection of the shipped SRMT at evaluation (issue 9): paired per-map differences of argmax and
sample against the published Follower, and argmax - sample, on the first 8 maps per set at 32 and 64
agents (selection-{argmax,sample}.csv). Run from the repository root."""

import csv

import numpy as np
from scipy import stats


def load(path):
    d = {}
    for r in csv.DictReader(open(path)):
        d[(r["algorithm"], r["map_set"], r["map_name"], int(r["num_agents"]))] = float(r["avg_throughput"])
    return d


A = load("docs/runs/srmt-evalspeed/selection-argmax.csv")
S = load("docs/runs/srmt-evalspeed/selection-sample.csv")
full = load("docs/runs/srmt-guided-115M-full/comparison.csv")


def ci(d):
    h = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.3f} [{d.mean() - h:+.3f}, {d.mean() + h:+.3f}]"


print(
    "| set | agents | n maps | Follower | SRMT sample | SRMT argmax | sample − Follower | argmax − Follower | argmax − sample |"
)
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for ms in ["01-random", "02-mazes"]:
    for n in [32, 64]:
        keys = sorted(k[2] for k in S if k[0] == "SRMT" and k[1] == ms and k[3] == n)
        s = np.array([S[("SRMT", ms, m, n)] for m in keys])
        a = np.array([A[("SRMT", ms, m, n)] for m in keys])
        f = np.array([S[("Follower", ms, m, n)] for m in keys])
        assert all(
            S[("SRMT", ms, m, n)] == full[("SRMT", ms, m, n)] for m in keys
        )  # same as the stored full grid
        print(
            f"| {ms} | {n} | {len(keys)} | {f.mean():.3f} | {s.mean():.3f} | {a.mean():.3f} | {ci(s - f)} | {ci(a - f)} | {ci(a - s)} |"
        )
