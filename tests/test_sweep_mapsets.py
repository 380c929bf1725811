"""``srmt sweep`` on a POGEMA env (the lifelong recipes): each run's checkpoint through ``srmt eval`` on map
sets, one table per (map set, agent count) and core with CIs over seeds and the paired difference against
the first core. The cell reduction and the statistics against hand-computed references, the dispatch and
its one-line errors, then two tiny real runs of ``lmapf-srmt-guided-64`` (CPU, evaluated on the shipped
``tiny`` map set): their cells against the episode logs, reuse, a sweep folder carried without the
finished runs' checkpoints, and a failing run that does not stop the other."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_model import TINY_SERIAL  # tests/tiny_model.py

import configs
from agents.sweep import jobs, parse_args, plan, run_sweep, stats
from agents.sweep.suites import CorridorSuite, MapSetSuite, cells, suite_for

TINY = [
    "device=cpu",
    "env.num_agents=4",
    "env.size=8",
    "env.max_episode_steps=16",
    *TINY_SERIAL,
    "train.autocast='off'",
    "train.rollout=8",
    "train.batch_size=64",
    "train.train_for_env_steps=16",  # one rollout of the 2 envs: the smallest run that saves a checkpoint
    "train.train_for_seconds=0",
    "train.save_every_sec=3600",
    "train.summaries_interval_s=1",
    "train.stats_avg=2",
]
EVAL = ["eval_config=eval/smoke", "max_maps=1", "eval_workers=1"]  # tiny-open: 2 counts x 2 seeds


# ----------------------------------------------------------------------------------- cells and stats


def _row(map_set, n, map_name, seed, value, mode="lifelong"):
    metric = "avg_throughput" if mode == "lifelong" else "CSR"
    return dict(
        map_set=map_set, mode=mode, map_name=map_name, num_agents=n, seed=seed, metrics={metric: value}
    )


def test_cells_average_the_metric_over_maps_and_seeds_of_each_set_and_count():
    rows = [
        _row("02-mazes", 8, "m0", 0, 0.4),
        _row("01-random", 64, "r0", 0, 2.0),
        _row("01-random", 64, "r1", 0, 1.0),
        _row("01-random", 64, "r1", 1, 1.5),
        _row("01-random", 32, "r0", 0, 0.9),
    ]
    out = cells(rows, ["01-random", "02-mazes"])
    assert [(c["map_set"], c["num_agents"]) for c in out] == [
        ("01-random", 32),
        ("01-random", 64),
        ("02-mazes", 8),
    ]
    assert out[1]["mean"] == pytest.approx(1.5) and out[1]["episodes"] == 3 and out[1]["maps"] == 2
    assert out[0]["metric"] == "avg_throughput"
    classic = cells([_row("c", 4, "m", 0, 1.0, "classic"), _row("c", 4, "m", 1, 0.0, "classic")], ["c"])
    assert classic == [
        dict(map_set="c", num_agents=4, mode="classic", metric="CSR", mean=0.5, episodes=2, maps=1)
    ]


def _run(core, seed, values, status="ok"):
    if status != "ok":
        return dict(core=core, seed=seed, status=status, error="x")
    shared = [
        dict(
            map_set="01-random",
            num_agents=n,
            mode="lifelong",
            metric="avg_throughput",
            mean=v,
            episodes=4,
            maps=4,
        )
        for n, v in zip((32, 64), values)
    ]
    return dict(core=core, seed=seed, status="ok", eval={"shared": shared}, env_steps=100)


def test_cell_summary_has_means_cis_and_the_paired_difference_by_seed():
    srmt = {0: (1.0, 2.0), 1: (1.2, 2.2), 2: (1.1, 1.9)}
    rmt = {0: (0.9, 1.5), 1: (1.0, 1.6), 3: (0.5, 0.5)}  # seed 3: no srmt partner
    runs = [_run("srmt", s, v) for s, v in srmt.items()] + [_run("rmt", s, v) for s, v in rmt.items()]
    runs.append(_run("rmt", 2, None, status="failed"))
    rows = stats.summarise_cells(runs, "srmt", 0.95, 2000)
    assert [(r.num_agents, r.core) for r in rows] == [(32, "srmt"), (32, "rmt"), (64, "srmt"), (64, "rmt")]
    s64, r64 = rows[2], rows[3]
    assert s64.seeds == [0, 1, 2] and s64.mean == pytest.approx(np.mean([2.0, 2.2, 1.9]))
    assert s64.ci[0] <= s64.mean <= s64.ci[1] and s64.reference == "" and math.isnan(s64.diff)
    assert r64.seeds == [0, 1, 3] and r64.missing == ["2 failed"]
    assert r64.reference == "srmt" and r64.diff_seeds == [0, 1]
    assert r64.diff == pytest.approx(np.mean([2.0 - 1.5, 2.2 - 1.6]))
    assert r64.diff_ci[0] <= r64.diff <= r64.diff_ci[1]
    lo, hi = stats.bootstrap_ci([2.0, 2.2, 1.9], np.mean, 0.95, 2000)
    assert s64.ci == pytest.approx((lo, hi))
    meta = dict(
        name="l",
        experiment="e",
        eval_config="eval/lifelong",
        max_maps=32,
        num_agents=[32, 64],
        episodes_per_run=128,
        action_selection="sample",
        confidence=0.95,
        bootstrap_resamples=2000,
        reference="srmt",
        metrics=["avg_throughput"],
    )
    md = stats.cells_markdown(rows, meta)
    assert "| 01-random | 64 | `rmt` | 0,1,3 (missing: 2 failed) |" in md
    assert f"| {r64.mean:.3f} [{r64.ci[0]:.3f}, {r64.ci[1]:.3f}] | +{r64.diff:.3f} " in md
    assert "| 01-random | 64 | 2.033 | 1.200 |" in md  # the means alone, one column per core
    csv_lines = stats.cells_csv(rows).splitlines()
    assert csv_lines[0].startswith("map_set,num_agents,core,metric,seeds,mean") and len(csv_lines) == 5


# ----------------------------------------------------------------------------------- dispatch and errors


def test_the_env_decides_the_evaluation(tmp_path):
    assert isinstance(suite_for("bottleneck"), CorridorSuite) and isinstance(suite_for("cue"), CorridorSuite)
    assert isinstance(suite_for("pogema"), MapSetSuite)
    name, specs = plan(
        parse_args(
            [
                "lmapf-srmt-guided-64",
                "name=l64",
                "cores=[srmt,rmt,none]",
                "seeds=[0,1,2]",
                "num_agents=[2,4]",
                f"out_dir={tmp_path}",
                *EVAL,
            ]
        )
    )
    assert len(specs) == 9 and len({s.run_dir for s in specs}) == 9
    key = specs[0].eval
    assert key["suite"] == "map_sets" and key["eval_config"] == "eval/smoke" and key["num_agents"] == [2, 4]
    assert key["episodes_per_run"] == 1 * 2 * 2  # 1 map x 2 counts x 2 seeds
    assert all(s.eval == key for s in specs)  # the same episodes for every core and seed
    assert specs[0].eval_options == dict(workers=1, out_dir=str(tmp_path / "l64" / "evals" / "l64-srmt-s0"))
    # workers do not change the results, so they are no part of the key; the episodes are
    one = ["lmapf-srmt-guided-64", "name=l64", "cores=[srmt]", "seeds=[0]", f"out_dir={tmp_path}", *EVAL]
    (other,) = plan(parse_args([*one, "num_agents=[2,4]", "eval_workers=4"]))[1]
    assert other.eval == key and other.eval_options["workers"] == 4
    (same,) = plan(parse_args(one))[1]  # the map set's own counts are 2 and 4: the same episodes
    assert same.eval["grid"] == key["grid"] and same.eval["num_agents"] == []
    (three,) = plan(parse_args([*one, "num_agents=[3]"]))[1]
    assert three.eval["grid"] != key["grid"] and three.eval["episodes_per_run"] == 2


@pytest.mark.parametrize(
    "argv, match",
    [
        (["lengths=[3,4]"], r"lengths=\[3, 4\] applies to the corridor tasks"),
        (["controls=[own]"], "controls=.* applies to the corridor tasks"),
        (["episodes=4"], "episodes=4 applies to the corridor tasks"),
        (["num_agents=[0]"], "num_agents=.* must be distinct integers >= 1"),
        (["num_agents=[8,8]"], "must be distinct"),
        (["max_maps=-1"], "max_maps=-1 must be >= 0"),
        (["eval_workers=-2"], "eval_workers=-2 must be >= 0"),
        (["eval_overrides=[workers=4]"], "the sweep sets workers"),
        (["eval_overrides=[seeds]"], "must look like key=value"),
        (
            ["eval_overrides=[max_episode_steps=-1]"],
            "eval_config 'eval/smoke' with eval_overrides.*must be >= 0",
        ),
        (["eval_overrides=[colour=red]"], "colour"),
        (["eval_config=eval/none-such"], "eval_config 'eval/none-such'.*not found"),
        (["map_sets=[no-such-set]"], "map set 'no-such-set'"),
        (['eval_overrides=["maps=[nomap]"]'], "unknown map name 'nomap'"),
    ],
)
def test_bad_map_set_keys_are_one_line_errors(tmp_path, argv, match):
    with pytest.raises(configs.ConfigError, match=match) as e:
        plan(parse_args(["lmapf-srmt-guided-64", f"out_dir={tmp_path}", "eval_config=eval/smoke", *argv]))
    assert "\n" not in str(e.value)


def test_cli_refuses_a_corridor_key_in_one_line(capsys, tmp_path):
    from agents import cli

    assert cli.main(["sweep", "lmapf-srmt-guided-64", "lengths=[3]", f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("srmt sweep: lengths=[3] applies to") and "\n" not in err


# ----------------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("mapsets")
    cfg = parse_args(
        ["lmapf-srmt-guided-64", "name=l", f"out_dir={out}", "cores=[srmt,none]", "seeds=[0]", "parallel=2"]
        + EVAL
        + TINY
    )
    return cfg, run_sweep(cfg, log=lambda s: None)


def _episodes(run_eval_dir: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(run_eval_dir.glob("episodes/*/*.jsonl")) for line in p.open()]


def test_two_tiny_lifelong_runs_are_trained_evaluated_and_tabled_per_cell(tiny_sweep):
    cfg, out = tiny_sweep
    root = out["dir"]
    runs = {r["run"]: r for r in out["runs"]}
    assert set(runs) == {"l-srmt-s0", "l-none-s0"}, [r.get("error") for r in out["runs"]]
    assert all(r["status"] == "ok" and r["trained"] and r["env_steps"] >= 16 for r in runs.values())
    for run, r in runs.items():
        assert (root / "runs" / run / "config.yaml").is_file() and f"core: {r['core']}" in (
            root / "configs" / f"{run}.yaml"
        ).read_text()
        # every cell against the run's own srmt eval episode log (the reference: one line per episode)
        episodes = _episodes(root / "evals" / run)
        assert len(episodes) == 4 and {e["algorithm"] for e in episodes} == {run}
        for cell in r["eval"]["shared"]:
            mine = [e for e in episodes if e["num_agents"] == cell["num_agents"]]
            assert cell["mean"] == pytest.approx(np.mean([e["metrics"]["avg_throughput"] for e in mine]))
            assert cell["episodes"] == 2 and cell["maps"] == 1 and cell["map_set"] == "tiny"
    assert [(r.map_set, r.num_agents, r.core) for r in out["summary"]] == [
        ("tiny", n, c) for n in (2, 4) for c in ("srmt", "none")
    ]
    table = (root / "table.md").read_text()
    assert (
        "| tiny | 4 | `none` | 0 |" in table and "`srmt` - core" in table and "srmt eval eval/smoke" in table
    )
    data = json.loads((root / "sweep.json").read_text())
    assert data["meta"]["suite"] == "map_sets" and data["meta"]["episodes_per_run"] == 4
    assert len((root / "runs.csv").read_text().splitlines()) == 1 + 2 * 2  # header, 2 runs x 2 cells
    assert (root / "summary.csv").read_text().startswith("map_set,num_agents,core")


def test_reuse_moved_folder_without_checkpoints_and_a_failing_run(tiny_sweep):
    cfg, first = tiny_sweep
    root = first["dir"]
    evals = {p: p.stat().st_mtime_ns for p in (root / "results").glob("*.eval.json")}
    again = run_sweep(cfg, log=lambda s: None)  # nothing trained, nothing evaluated again
    assert all(r["status"] == "ok" and not r["trained"] for r in again["runs"])
    assert [r["eval"] for r in again["runs"]] == [r["eval"] for r in first["runs"]]
    assert {p: p.stat().st_mtime_ns for p in evals} == evals
    # another evaluation grid is another key: the cached evaluations do not match it
    _, specs = plan(dataclasses.replace(cfg, num_agents=[2]))
    assert not any(jobs._eval_cached(s, Path(s.result_path).with_suffix(".eval.json")) for s in specs)
    # the sweep folder carried to another host and back without the finished runs' checkpoints (they
    # need not travel): the runs and their evaluations are reused from the markers alone
    moved = Path(cfg.out_dir).parent / "carried"
    shutil.copytree(Path(cfg.out_dir), moved)
    for pth in moved.rglob("*.pth"):
        pth.unlink()
    # and one run's evaluation lost too: that run cannot be evaluated without its checkpoint, so it fails
    # in one line while the other is reported
    (moved / "l" / "results" / "l-none-s0.eval.json").unlink()
    out = run_sweep(dataclasses.replace(cfg, out_dir=str(moved)), log=lambda s: None)
    status = {r["run"]: r for r in out["runs"]}
    assert status["l-srmt-s0"]["status"] == "ok" and not status["l-srmt-s0"]["trained"]
    assert status["l-srmt-s0"]["eval"] == first["runs"][0]["eval"]
    assert status["l-none-s0"]["status"] == "failed"
    assert "is not in the run folder" in status["l-none-s0"]["error"]
    assert "| tiny | 2 | `none` | - (missing: 0 failed) | n/a n/a |" in out["table"]
    assert "| tiny | 2 | `srmt` | 0 |" in out["table"]


def test_an_evaluation_with_other_episode_settings_replaces_the_runs_episode_log(tiny_sweep, tmp_path):
    cfg, out = tiny_sweep
    (spec, *_), run = plan(cfg)[1], out["runs"][0]
    assert spec.run == run["run"] == "l-srmt-s0"
    evals = tmp_path / "evals"
    shutil.copytree(out["dir"] / "evals" / spec.run, evals)
    key = {**jobs._eval_key(spec), "eval_overrides": ["max_episode_steps=8"]}
    logged: list[str] = []
    run_dir = Path(spec.run_dir)
    res = MapSetSuite().evaluate(
        run_dir, run_dir / key["checkpoint"], key, dict(workers=1, out_dir=str(evals)), logged.append
    )
    assert (
        len(logged) == 1
        and "holds results of another config" in logged[0]
        and "max_episode_steps" in logged[0]
    )
    episodes = _episodes(evals)
    assert len(episodes) == 4 and {e["metrics"]["ep_length"] for e in episodes} == {8.0}
    assert [c["episodes"] for c in res["shared"]] == [2, 2]


def test_a_host_without_scipy_keeps_the_results_and_says_so_in_one_line(tiny_sweep, monkeypatch):
    import sys

    cfg, first = tiny_sweep
    monkeypatch.setitem(
        sys.modules, "scipy.stats", None
    )  # `import scipy.stats` now fails, as on the GPU host
    logged: list[str] = []
    out = run_sweep(cfg, log=logged.append)
    assert out["table"] == "" and [r["status"] for r in out["runs"]] == ["ok", "ok"]
    assert any(
        line.startswith("[srmt sweep] tables not written: scipy.stats does not import") for line in logged
    )
    assert all(
        Path(r["run_dir"]).parent.parent.joinpath("results", f"{r['run']}.eval.json").is_file()
        for r in out["runs"]
    )


def test_the_documented_gpu_sweep_plans_its_nine_runs(tmp_path):
    """docs/runs/l64-controls/args.sh (the command of docs/training.md) stays a valid sweep."""
    import subprocess

    from configs.paths import BENCHMARK, data_dir

    if not (data_dir() / BENCHMARK / "experiments" / "01-random").is_dir():
        pytest.skip("needs the POGEMA benchmark data (srmt data fetch)")
    here = Path(__file__).resolve().parents[1] / "docs" / "runs" / "l64-controls"
    for script in ("call.sh", "unpack.sh"):
        subprocess.run(["bash", "-n", str(here / script)], check=True)
    args = subprocess.run(
        ["bash", "-c", f'source {here / "args.sh"}; printf "%s\\n" "${{SWEEP_ARGS[@]}}"'],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    name, specs = plan(parse_args([*args, f"out_dir={tmp_path}"]))
    assert name == "l64" and sorted(s.run for s in specs) == sorted(
        f"l64-{c}-s{s}" for c in ("srmt", "rmt", "none") for s in (0, 1, 2)
    )
    assert all(s.target_steps == 30_000_000 for s in specs)
    assert specs[0].eval["episodes_per_run"] == 2 * 32 * 2  # 2 sets x 32 maps x (32, 64) agents
