"""Smoke runs of `srmt envs ...` and `srmt bench env` (tiny budgets; figures are not checked)."""

from __future__ import annotations

import re

import pytest

from agents.bench import env as bench_env
from agents.cli import main as srmt
from configs import paths

MAPS = paths.candidates("pogema-benchmark/experiments/01-random/maps.yaml")[1]  # in the data folder


def test_list(capsys):
    assert srmt(["envs"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("registered envs")
    assert any(ln.split()[:1] == ["pogema"] for ln in lines)
    assert any(ln.split()[:1] == ["bottleneck"] and "options: split, corridor_lengths" in ln for ln in lines)
    assert "bottleneck-train" in out and "maze" in out


def test_play_registered_and_preset(capsys):
    assert (
        srmt(
            ["envs", "play", "bottleneck", "options.corridor_lengths=[3]", "max_episode_steps=20", "--render"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "corridor_length=3" in out and "metrics: CSR=" in out and "####.####" in out
    assert (
        srmt(["envs", "play", "random-32x32-lifelong", "num_agents=8", "max_episode_steps=10", "--seed", "1"])
        == 0
    )
    assert "metrics: throughput=" in capsys.readouterr().out


@pytest.mark.skipif(not MAPS.is_file(), reason="shared benchmark maps not present")
def test_maps(capsys):
    assert srmt(["envs", "maps", str(MAPS), "validation-random-seed-00[0-2]"]) == 0
    assert "3 of 128 maps" in capsys.readouterr().out


def test_bad_input_is_one_line_with_status_2(capsys):
    assert srmt(["envs", "play", "bottleneck", "reward=foo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Invalid value 'foo'" in err
    assert srmt(["envs", "play", "pogema", "map=ab%"]) == 2
    assert "illegal character '%'" in capsys.readouterr().err


def test_bench_env_prints_table(capsys, tmp_path):
    out_json = tmp_path / "b.json"
    assert (
        srmt(
            [
                "bench",
                "env",
                "--seconds",
                "0.05",
                "--processes",
                "2",
                "--env",
                "bottleneck",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("bottleneck")]
    assert len(rows) == 6  # pogema/srmt/srmt+path x 1/2 processes
    assert re.search(r"bottleneck\s+pogema\s+2\s+1\s+[\d,]+\s+1\.00", out)
    assert re.search(r"bottleneck\s+srmt\s+2\s+1\s+[\d,]+\s+[\d.]+\s+1\.00", out)
    assert re.search(r"bottleneck\s+srmt\+path\s+2\s+1\s+[\d,]+\s+[\d.]+\s+[\d.]+", out)
    assert out_json.read_text().count('"impl"') == 6


def test_bench_env_rows_per_replan_every(capsys):
    args = "--seconds 0.05 --processes 1 --env bottleneck --impl srmt --impl srmt+path --replan-every 1 3"
    assert srmt(["bench", "env", *args.split()]) == 0
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("bottleneck")]
    assert [r[1] for r in rows] == ["srmt", "srmt+path", "srmt+path/3"]
    assert all(float(r[6]) > 0 for r in rows)  # x srmt, measured in the same run


def test_bench_env_vector_rows_with_ratio_to_the_loop(capsys):
    args = "--seconds 0.05 --processes 1 --env bottleneck-short --impl loop --impl vector --envs 8"
    assert srmt(["bench", "env", *args.split()]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("bottleneck-short")]
    assert [r[1] for r in rows] == ["loop/8", "vector/8"]
    assert float(rows[1][7]) > 0 and rows[0][7] == "nan"  # x loop, measured in the same run


def test_bench_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        bench_env.main(["--processes", "0"])
    with pytest.raises(SystemExit):
        bench_env.main(["--replan-every", "0"])
    with pytest.raises(SystemExit):
        bench_env.main(["--envs", "0"])
