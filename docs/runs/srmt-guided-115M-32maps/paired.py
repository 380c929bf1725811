"""Paired per-map differences of SRMT (the shipped checkpoint of the comparison.csv given, default the 115M one) against Follower (published), FollowerLite and PIBT
(this repository's full-grid results) on the 32 maps per set of comparison.csv. Run from the repository root."""
import csv, collections, sys, numpy as np
from scipy import stats
def load(path, algs=None):
    d = collections.defaultdict(dict)
    for r in csv.DictReader(open(path)):
        if algs and r["algorithm"] not in algs: continue
        d[r["algorithm"]][(r["map_set"], r["map_name"], int(r["num_agents"]), int(r["seed"]))] = float(r["avg_throughput"])
    return d
cmp = load(sys.argv[1] if len(sys.argv) > 1 else "docs/runs/srmt-guided-115M-32maps/comparison.csv")
full = load("docs/runs/lifelong-full/results.csv", {"FollowerLite"})
pw = load("docs/runs/lifelong-pibt-wpibt/results.csv", {"PIBT"})
cmp.update(full); cmp.update(pw)
keys = sorted(cmp["SRMT"])
counts = [8,16,24,32,48,64]
print("| algorithm (maps per set: see n) | set | " + " | ".join(map(str,counts)) + " |")
print("|---|---|" + "---:|"*6)
for alg in ["SRMT","PIBT","FollowerLite","Follower"]:
    for ms in ["01-random","02-mazes"]:
        row=[]
        for n in counts:
            ks=[k for k in keys if k[0]==ms and k[2]==n]
            miss=[k for k in ks if k not in cmp[alg]]
            if miss: row.append("n/a"); continue
            row.append(f"{np.mean([cmp[alg][k] for k in ks]):.2f}")
        print(f"| {alg} | {ms} | " + " | ".join(row) + " |")
print()
print("| paired difference (mean [95% t-CI] over maps) | set | " + " | ".join(map(str,counts)) + " |")
print("|---|---|" + "---:|"*6)
for a,b in [("SRMT","Follower"),("SRMT","FollowerLite"),("SRMT","PIBT")]:
    for ms in ["01-random","02-mazes"]:
        row=[]
        for n in counts:
            ks=[k for k in keys if k[0]==ms and k[2]==n and k in cmp[b]]
            d=np.array([cmp[a][k]-cmp[b][k] for k in ks])
            if len(d)<2: row.append("n/a"); continue
            h=stats.t.ppf(0.975,len(d)-1)*d.std(ddof=1)/np.sqrt(len(d))
            row.append(f"{d.mean():+.3f} [{d.mean()-h:+.3f}, {d.mean()+h:+.3f}]")
        print(f"| {a} − {b} | {ms} | " + " | ".join(row) + " |")
