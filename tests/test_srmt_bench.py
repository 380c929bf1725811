"""Smoke run of ``srmt bench model`` (tiny sizes): one table row per variant, the baseline ratio 1.00."""

from agents.bench import model as bench_model
from srmt import CORE_NAMES


def test_bench_model_smoke(capsys):
    argv = [
        "--device",
        "cpu",
        "--G",
        "1",
        "--A",
        "2",
        "--T",
        "2",
        "--iters",
        "1",
        "--presets",
        "srmt-bottleneck",
    ]
    assert bench_model.main(argv) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| srmt-bottleneck |")]
    assert [r.split("|")[2].strip() for r in rows] == ["none", *(c for c in CORE_NAMES if c != "none")]
    assert rows[0].rstrip(" |").endswith("1.00")
    assert all(float(r.split("|")[5].replace(",", "")) > 0 for r in rows)


def test_bench_step_counts_ops(capsys):
    from agents.bench import step as bench_step

    argv = [
        "--preset",
        "srmt-bottleneck",
        "--G",
        "2",
        "--A",
        "3",
        "--iters",
        "1",
        "--variants",
        "none",
        "srmt",
    ]
    assert bench_step.main(argv) == 0
    rows = [
        ln.split("|")
        for ln in capsys.readouterr().out.splitlines()
        if ln.startswith("| none |") or ln.startswith("| srmt |")
    ]
    assert [(r[1].strip(), r[3].strip()) for r in rows] == [
        (v, f) for f in ("plain", "mixed") for v in ("none", "srmt")
    ]
    ops = {(r[1].strip(), r[3].strip()): (int(r[4]), int(r[5])) for r in rows}
    for total, kernels in ops.values():
        assert 0 < kernels < total
    assert ops["srmt", "plain"][1] > ops["none", "plain"][1]  # the memory core launches more


def test_op_counter_counts_and_separates_views():
    import torch

    from agents.bench.step import OpCounter

    x = torch.ones(4, 3)
    with OpCounter() as c:
        y = (x + 1).view(12).t()
        torch.cat([y, y])
    assert c.ops["add"] == 1 and c.ops["cat"] == 1 and c.ops["view"] == 1
    assert c.total - c.views == 2


def test_bench_step_core_only_counts_fewer_ops(capsys):
    from agents.bench import step as bench_step

    base = ["--preset", "srmt-bottleneck", "--G", "2", "--A", "3", "--iters", "1", "--flags", "mixed"]
    full, core = [], []
    for argv, rows in ((base, full), ([*base, "--core-only"], core)):
        assert bench_step.main([*argv, "--variants", "srmt"]) == 0
        rows += [ln.split("|") for ln in capsys.readouterr().out.splitlines() if ln.startswith("| srmt |")]
    assert len(full) == len(core) == 1
    assert 0 < int(core[0][5]) < int(full[0][5])  # no encoder, no heads
