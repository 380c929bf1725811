"""Our result folders load with pogema-toolbox's own loader (the real package: CI installs pogema-toolbox
0.1.1 with --no-deps, its wandb pin being older than sample-factory's environment; see the README)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agents.eval.api import evaluate, load_eval_config
from agents.eval.results import read_results


@pytest.fixture(scope="module")
def smoke_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toolbox") / "eval"
    cfg = load_eval_config(
        "eval/smoke",
        [f"out_dir={out}", "run=[PIBT,Random]", "plots=false", "progress=false", "max_episode_steps=16"],
    )
    evaluate(cfg, echo=False)
    return out


def test_folder_holds_the_toolbox_evaluation_config(smoke_out):
    folder = smoke_out / "tiny-lmapf"
    cfg = yaml.safe_load((folder / "tiny-lmapf.yaml").read_text())
    rows = [r for r in read_results(smoke_out) if r["map_set"] == "tiny"]
    env = cfg["environment"]
    assert env["on_target"] == "restart" and env["max_episode_steps"] == 16
    assert env["num_agents"]["grid_search"] == sorted({r["num_agents"] for r in rows})
    assert set(env["map_name"]["grid_search"]) == {r["map_name"] for r in rows}
    assert set(cfg["algorithms"]) == {"PIBT", "Random"}
    assert len(rows) == 2 * len(env["num_agents"]["grid_search"]) * len(env["map_name"]["grid_search"]) * len(
        env["seed"]["grid_search"]
    )


def test_pogema_toolbox_load_from_folder_reads_our_results(smoke_out):
    view_utils = pytest.importorskip("pogema_toolbox.views.view_utils")
    folder = smoke_out / "tiny-lmapf"
    results, evaluation_config = view_utils.load_from_folder(folder)
    ours = [r for r in read_results(smoke_out) if r["map_set"] == "tiny"]
    assert len(results) == len(ours) and {r["algorithm"] for r in results} == {"PIBT", "Random"}
    assert evaluation_config["environment"]["name"] == "Pogema-v0"
    df = view_utils.eval_logs_to_pandas(results)  # the toolbox's own table builder
    assert {"map_name", "num_agents", "seed", "algorithm", "avg_throughput"} <= set(df.columns)
    mean = df.groupby("algorithm")["avg_throughput"].mean()
    assert mean["PIBT"] > mean["Random"]
