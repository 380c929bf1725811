"""Before/after decision time of the shipped SRMT (issue 9 item 4): ms per step per cell, mean over the
4 maps, from runtime-{old,new}-{1,2}.csv; checks that every episode's throughput is the same in all 4
runs. Run from the repository root."""

import collections
import csv

import numpy as np

D = "docs/runs/srmt-evalspeed"
ms_per_step = collections.defaultdict(list)
thr = {}
for impl in ["old", "new"]:
    for rnd in [1, 2]:
        for r in csv.DictReader(open(f"{D}/runtime-{impl}-{rnd}.csv")):
            ms_per_step[impl, rnd, r["map_set"], int(r["num_agents"])].append(
                1000 * float(r["runtime"]) / float(r["ep_length"])
            )
            thr[impl, rnd, r["map_set"], r["map_name"], int(r["num_agents"])] = r["avg_throughput"]
same = all(thr[("old", 1, *k[2:])] == v for k, v in thr.items())
print(f"every episode's throughput identical in the 4 runs: {same} ({len(thr) // 4} episodes per run)")
counts = [8, 16, 24, 32, 48, 64]
for ms in ["01-random", "02-mazes"]:
    print(f"\n| {ms} | " + " | ".join(map(str, counts)) + " |")
    print("|---|" + "---:|" * len(counts))
    for impl in ["old", "new"]:
        for rnd in [1, 2]:
            cells = " | ".join(f"{np.mean(ms_per_step[impl, rnd, ms, n]):.2f}" for n in counts)
            print(f"| {impl}, run {rnd} | {cells} |")
