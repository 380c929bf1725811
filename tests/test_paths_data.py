"""The one path rule (configs.paths) and `srmt data`: pack, fetch from a file:// URL, pins, bad archives."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import configs
from agents import data_cmd
from agents.cli import main as srmt
from agents.eval.benchmark import resolve_map_set
from configs import paths


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """An empty working directory and an empty data folder ($SRMT_DATA)."""
    work, data = tmp_path / "work", tmp_path / "data"
    work.mkdir()
    data.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SRMT_DATA", str(data))
    monkeypatch.delenv("SRMT_DATA_URL", raising=False)
    return work, data


def test_rule_order_as_given_then_data_folder_then_package(data_home):
    work, data = data_home
    rel = "eval/smoke.yaml"  # shipped in the package (configs/eval/smoke.yaml)
    assert paths.resolve(rel) == (paths.CONFIG_DIR / rel).resolve()
    (data / "eval").mkdir()
    (data / rel).write_text("mode: lifelong\n")
    assert paths.resolve(rel) == (data / rel).resolve()  # the data folder shadows the package
    (work / "eval").mkdir()
    (work / rel).write_text("mode: classic\n")
    assert paths.resolve(rel) == (work / rel).resolve()  # as given (working directory) wins
    assert paths.resolve(work / rel) == (work / rel).resolve()  # absolute: only itself
    # the package's data folder: the shipped FollowerLite checkpoint and its licence
    ckpt = paths.resolve("follower-lite/checkpoint_000001248_20447232.pth")
    assert ckpt.parent == (paths.PACKAGE_DATA / "follower-lite").resolve()
    assert "MIT License" in (ckpt.parent / "LICENSE").read_text()


def test_default_data_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SRMT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.data_dir() == tmp_path / "srmt" / "data"


def test_missing_path_is_one_line_naming_the_places_and_the_fetch_command(data_home):
    with pytest.raises(ValueError) as e:
        paths.resolve("pogema-benchmark/experiments", "benchmark_dir", kind="dir")
    msg = str(e.value)
    assert "\n" not in msg and "srmt data fetch" in msg and str(data_home[1]) in msg
    with pytest.raises(ValueError, match="no-such.pth"):
        paths.resolve("no-such.pth", "checkpoint")
    with pytest.raises(ValueError, match="empty path"):
        paths.resolve("")


def test_every_reader_uses_the_rule(data_home):
    work, data = data_home
    (data / "my-exp.yaml").write_text("name: from-data-folder\n")
    assert configs.resolve("my-exp") == (data / "my-exp.yaml").resolve()
    assert configs.resolve("bottleneck-srmt").name == "bottleneck-srmt.yaml"  # shipped experiment names
    assert resolve_map_set("tiny", "lifelong", "pogema-benchmark").name == "tiny-lmapf.yaml"
    with pytest.raises(ValueError) as e:
        resolve_map_set("01-random", "lifelong", "pogema-benchmark")
    assert "srmt data fetch" in str(e.value) and "\n" not in str(e.value)
    from envs.maps import resolve_path

    (data / "m.yaml").write_text("a: '..'\n")
    assert resolve_path("m.yaml") == (data / "m.yaml").resolve()


def _tiny_dataset(root: Path) -> Path:
    folder = root / "pogema-benchmark"
    (folder / "experiments" / "x").mkdir(parents=True)
    (folder / "experiments" / "x" / "maps.yaml").write_text("m: '...'\n")
    (folder / "LICENSE").write_text("Apache\n")
    return folder


def test_pack_is_reproducible_and_fetch_unpacks_a_file_url(tmp_path, data_home):
    src = _tiny_dataset(tmp_path / "src")
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    digest = data_cmd.pack(src, a)
    (src / "LICENSE").touch()  # a new mtime must not change the archive
    assert data_cmd.pack(src, b) == digest and a.read_bytes() == b.read_bytes()

    url = a.resolve().as_uri()
    with pytest.raises(ValueError, match="sha256"):
        data_cmd.fetch(url=url, sha256="0" * 64, echo=False)
    assert not (data_home[1] / "pogema-benchmark").exists()  # a bad download leaves nothing behind
    got = data_cmd.fetch(url=url, sha256=digest, echo=False)
    assert got == data_home[1] / "pogema-benchmark"
    assert (got / "experiments" / "x" / "maps.yaml").read_text() == "m: '...'\n"
    assert paths.resolve("pogema-benchmark", kind="dir") == got.resolve()
    # present: kept unless --force
    (got / "LICENSE").write_text("changed\n")
    data_cmd.fetch(url=url, sha256=digest, echo=False)
    assert (got / "LICENSE").read_text() == "changed\n"
    data_cmd.fetch(url=url, sha256=digest, force=True, echo=False)
    assert (got / "LICENSE").read_text() == "Apache\n"


def test_fetch_cli_with_dir_and_env_url(tmp_path, data_home, monkeypatch, capsys):
    archive = tmp_path / "a.tar.gz"
    digest = data_cmd.pack(_tiny_dataset(tmp_path / "src"), archive)
    dest = tmp_path / "elsewhere"
    monkeypatch.setenv("SRMT_DATA_URL", archive.resolve().as_uri())
    assert srmt(["data", "fetch", "--sha256", digest, "--dir", str(dest)]) == 0
    assert (dest / "pogema-benchmark" / "LICENSE").is_file()
    assert srmt(["data", "fetch", "--dir", str(tmp_path / "x"), "--force"]) == 2  # the pin of the real data
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sha256" in err


def test_fetch_refuses_unsafe_archives_and_missing_urls(tmp_path, data_home, capsys):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("pogema-benchmark/../../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    digest = data_cmd.sha256_of(evil)
    with pytest.raises(ValueError, match="not a plain file"):
        data_cmd.fetch(url=evil.as_uri(), sha256=digest, echo=False)
    assert not (tmp_path / "escaped.txt").exists()
    with pytest.raises(ValueError, match="failed"):
        data_cmd.fetch(url=(tmp_path / "missing.tar.gz").as_uri(), sha256=digest, echo=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        data_cmd.fetch("nope", echo=False)
    assert srmt(["data", "fetch"]) == 2  # no URL configured: one line saying what to do
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--url" in err and "SRMT_DATA" in err


def test_data_list_and_help(data_home, capsys):
    assert srmt(["data"]) == 0
    out = capsys.readouterr().out
    assert str(data_home[1]) in out and "missing: `srmt data fetch`" in out
    assert srmt(["data", "--help"]) == 0
    assert "srmt data fetch" in capsys.readouterr().out
