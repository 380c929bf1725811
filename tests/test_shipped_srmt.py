"""The shipped lifelong SRMT (``configs/data/srmt-lifelong``): weights only, at most 10 MB, loads with
``weights_only=True`` through the path rule from any folder, and ``srmt eval`` / ``srmt enjoy`` play it
with no training (issue 9 item 6)."""

from __future__ import annotations

import math
import pickle
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from agents import enjoy as enjoy_cmd
from agents import evaluate as eval_cmd
from agents.eval.results import read_results
from agents.eval_config import SRMT_LIFELONG_CHECKPOINT, EvalConfig
from configs import paths

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "data" / SRMT_LIFELONG_CHECKPOINT


def test_shipped_file_is_weights_only_and_small():
    assert SHIPPED.is_file() and SHIPPED.stat().st_size <= 10 * 2**20
    ckpt = torch.load(SHIPPED, map_location="cpu", weights_only=True)  # raises on any pickled code
    assert set(ckpt) == {"model", "srmt", "env_steps", "train_step"}  # no optimizer state
    assert ckpt["srmt"]["experiment"]["model"]["core"] == "srmt" and ckpt["env_steps"] > 0
    with pytest.raises(pickle.UnpicklingError):  # a checkpoint that needs code is refused the same way
        bad = SHIPPED.parent.parent / "_not_weights.pth"
        try:
            torch.save({"f": math.floor}, bad)
            torch.load(bad, weights_only=True)
        finally:
            bad.unlink(missing_ok=True)


def test_the_path_rule_finds_it_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.resolve(SRMT_LIFELONG_CHECKPOINT, "srmt checkpoint", kind="any") == SHIPPED
    assert EvalConfig().algorithms["SRMT"].checkpoint == SRMT_LIFELONG_CHECKPOINT


def test_srmt_eval_and_enjoy_play_the_shipped_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ev"
    rc = eval_cmd.main(["eval/smoke", "run=[SRMT,Random]", f"out_dir={out}", "workers=1"])
    assert rc == 0
    rows = read_results(out)
    srmt = [r for r in rows if r["algorithm"] == "SRMT"]
    assert len(srmt) == 8  # 2 maps x 2 agent counts x 2 seeds
    thr = [r["metrics"]["avg_throughput"] for r in srmt]
    assert all(math.isfinite(x) and x >= 0 for x in thr)
    random_thr = [r["metrics"]["avg_throughput"] for r in rows if r["algorithm"] == "Random"]
    assert sum(thr) > sum(random_thr)  # a trained policy, not noise
    svg = tmp_path / "srmt.svg"
    assert enjoy_cmd.main(["eval/smoke", "enjoy.algorithm=SRMT", f"enjoy.out={svg}"]) == 0
    ET.parse(svg)  # a well-formed SVG
