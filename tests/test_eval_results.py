"""Result files round-trip, published results read and pair with ours, statistics and tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from agents.eval.published import available, load_published, on_same_instances
from agents.eval.results import read_csv, read_results, same_metrics, to_toolbox, write_results
from agents.eval.tables import FEW_MARK, add_runtime_per_step, markdown_table, mean_ci, report, summarize

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pogema-benchmark"
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="benchmark data not available")


def _rows():
    rng = np.random.default_rng(0)
    rows = []
    for algo in ("PIBT", "My Model/v2"):
        for map_set, mode, metrics in (
            ("01-random", "lifelong", ("avg_throughput",)),
            ("tiny", "classic", ("CSR", "SoC")),
        ):
            for n in (8, 16):
                for m in range(3):
                    vals = {k: float(rng.random()) for k in metrics}
                    vals.update(runtime=float(rng.random()), ep_length=float(64 + m))
                    rows.append(dict(source="ours", algorithm=algo, map_set=map_set, mode=mode,
                                     map_name=f"map-{m}", num_agents=n, seed=m % 2, metrics=vals))  # fmt: skip
    return rows


def test_results_round_trip(tmp_path):
    rows = _rows()
    paths = write_results(rows, tmp_path)
    assert (tmp_path / "01-random-lmapf" / "PIBT.json").is_file()
    assert (tmp_path / "tiny-mapf" / "My_Model_v2.json").is_file()  # display names become safe file names
    back = read_results(tmp_path)
    key = lambda r: (r["algorithm"], r["map_set"], r["mode"], r["map_name"], r["num_agents"], r["seed"])  # noqa: E731
    assert sorted(back, key=key) == sorted(rows, key=key)
    assert sorted(read_csv(tmp_path / "results.csv"), key=key) == sorted(rows, key=key)
    assert tmp_path / "results.csv" in paths


def test_toolbox_format():
    item = to_toolbox(_rows()[:1])[0]
    assert set(item) == {"metrics", "env_grid_search", "algorithm"}
    assert set(item["env_grid_search"]) == {"map_name", "num_agents", "seed"}


def test_same_metrics_ignores_runtime_only():
    assert same_metrics({"CSR": 1.0, "runtime": 1.0}, {"CSR": 1.0, "runtime": 2.0})
    assert not same_metrics({"CSR": 1.0}, {"CSR": 0.0})
    assert not same_metrics({"CSR": 1.0}, {"CSR": 1.0, "SoC": 3.0})


def test_bootstrap_ci_against_a_plain_resampling_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=60)
    s = mean_ci(x)
    assert s.mean == pytest.approx(x.mean()) and s.n == 60 and s.low < s.mean < s.high
    # slow reference: resample by hand, take the 2.5 / 97.5 percentiles of the means
    means = np.array([rng.choice(x, size=x.size).mean() for _ in range(4000)])
    lo, hi = np.percentile(means, [2.5, 97.5])
    assert s.low == pytest.approx(lo, abs=0.12) and s.high == pytest.approx(hi, abs=0.12)
    # close to the normal-theory interval for a large normal sample
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert s.ci == pytest.approx(half, rel=0.2)
    assert mean_ci(x) == s  # seeded: the same table every time
    const = mean_ci([2.0, 2.0, 2.0])
    assert const.low == const.high == 2.0
    assert math.isnan(mean_ci([5.0]).ci) and mean_ci([]).n == 0 and mean_ci([1.0, float("nan")]).n == 1


def test_small_samples_are_marked_with_a_warning():
    rows = _rows()  # 3 episodes per cell
    text = markdown_table(rows, "01-random", "lifelong", "avg_throughput")
    assert FEW_MARK in text and "**Warning:**" in text and "fewer than 5 episodes" in text
    many = [dict(r, map_name=f"{r['map_name']}-{k}") for r in rows for k in range(2)]  # 6 per cell
    text = markdown_table(many, "01-random", "lifelong", "avg_throughput")
    assert FEW_MARK not in text and "Warning" not in text and "[" in text


def test_tables_label_published_rows():
    rows = _rows()
    rows.append(dict(rows[0], source="published", algorithm="RHCR"))
    text = markdown_table(rows, "01-random", "lifelong", "avg_throughput")
    assert "| RHCR (published) |" in text and "| PIBT |" in text and "8 agents" in text
    stats = summarize(rows, "avg_throughput")
    assert stats[("01-random", "lifelong", "RHCR (published)", 8)].n == 1
    assert "`SoC`" in report(rows)


def test_runtime_per_step_uses_episode_length():
    rows = [dict(source="published", algorithm="X", map_set="s", mode="lifelong", map_name="m", num_agents=8,
                 seed=0, metrics={"runtime": 2.56})]  # fmt: skip
    add_runtime_per_step(rows, {("s", "lifelong"): 256})
    assert rows[0]["metrics"]["runtime_ms_per_step"] == pytest.approx(10.0)


@needs_bench
def test_published_results_read_and_pair():
    assert {"RHCR", "Follower", "MATS-LP"} <= set(available(str(BENCH), "01-random", "lifelong"))
    pub = load_published(str(BENCH), "01-random", "lifelong", ["RHCR"])
    assert len(pub) == 768 and pub[0]["source"] == "published" and pub[0]["seed"] == 0
    raw = json.loads((BENCH / "raw_data_LMAPF" / "01-random" / "RHCR.json").read_text())
    first = raw[0]
    assert pub[0]["metrics"]["avg_throughput"] == first["metrics"]["avg_throughput"]
    ours = [dict(source="ours", algorithm="PIBT", map_set="01-random", mode="lifelong",
                 map_name=first["env_grid_search"]["map_name"], num_agents=8, seed=0, metrics={})]  # fmt: skip
    paired = on_same_instances(pub, ours)
    assert len(paired) == 1 and paired[0]["map_name"] == ours[0]["map_name"] and paired[0]["num_agents"] == 8
    with pytest.raises(ValueError, match="no published results for \\['LaCAM'\\]"):
        load_published(str(BENCH), "01-random", "lifelong", ["LaCAM"])
