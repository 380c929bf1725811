"""Import direction, checked on the source with ``ast``: srmt/ (torch only) <- agents/ -> envs/ (numpy/pogema only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "envs": {"torch", "srmt", "agents", "sample_factory"},
    "srmt": {"pogema", "sample_factory", "gymnasium", "envs", "agents"},
}


def imported_roots(path: Path) -> set[str]:
    """Top-level package of every import in a file, including imports inside functions."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                roots.add(node.args[0].value.split(".")[0])
    return roots


def test_scanner_sees_every_kind_of_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "import torch.nn\nfrom sample_factory.x import y\ndef f():\n    import pogema\n"
        "import importlib\nimportlib.import_module('agents.cli')\nfrom . import sibling\n"
    )
    assert imported_roots(f) == {"torch", "sample_factory", "pogema", "importlib", "agents"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    files = sorted((ROOT / package).rglob("*.py"))
    if not files:
        pytest.skip(f"{package}/ has no sources yet")
    bad = [
        f"{f.relative_to(ROOT)} imports {root}"
        for f in files
        for root in sorted(imported_roots(f) & FORBIDDEN[package])
    ]
    assert not bad, "layering violated: " + "; ".join(bad)
