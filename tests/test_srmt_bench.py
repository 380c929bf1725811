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
