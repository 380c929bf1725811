"""srmt data: the data that benchmark commands read, in the user's data folder.

usage:
  srmt data [list]                                   where the data folder is and what it holds
  srmt data fetch [NAME] [--url URL] [--sha256 HEX] [--dir FOLDER] [--force]
  srmt data pack FOLDER OUT.tar.gz                   the reproducible archive of a data folder + its sha256

fetch downloads NAME's archive (default: pogema-benchmark), checks its sha256 against the pin, and
unpacks it into the data folder: $SRMT_DATA when set, else ~/.cache/srmt/data (--dir overrides both).
Commands find it there by the one path rule: a path as given, then the data folder, then the package's
own data. The download URL comes from --url, else $SRMT_DATA_URL, else the dataset's configured URL;
file:// URLs work too (e.g. an archive made with `srmt data pack` on another machine).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from configs import paths

URL_ENV = "SRMT_DATA_URL"


@dataclass(frozen=True)
class Dataset:
    folder: str
    """Top-level folder of the archive, and its name in the data folder."""
    sha256: str
    """Pin of the archive (as ``srmt data pack`` builds it)."""
    url: str
    """Where the archive is published; empty = none configured yet (``--url`` / ``$SRMT_DATA_URL``)."""
    licence: str
    source: str
    what: str


DATASETS = {
    "pogema-benchmark": Dataset(
        folder=paths.BENCHMARK,
        sha256="1c23abaea0a018400baf8d55ff36d007f3dee528986f00e08abb6ec3ecf8c126",
        # No public copy of this archive is reachable from here yet: the upstream repository (source)
        # keeps the same files in another layout (experiments under algorithms/, scenarios in separate
        # files), so its archives do not match the pin. Publish `srmt data pack`'s archive and set this.
        url="",
        licence="Apache-2.0",
        source="https://github.com/CognitiveAISystems/pogema-benchmark",
        what="POGEMA benchmark 01-random and 02-mazes (lifelong and classic configs, maps, frozen scenarios) "
        "and its published per-episode results (raw_data_LMAPF, raw_data_MAPF)",
    ),
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack(folder: Path, out: Path) -> str:
    """A byte-reproducible ``.tar.gz`` of ``folder`` (sorted entries, zero times and owners, fixed modes);
    returns its sha256. The archive's top-level folder is ``folder.name``."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise ValueError(f"pack: {str(folder)!r} is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    entries = sorted(p for p in folder.rglob("*") if p.is_dir() or p.is_file())
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for p in [folder, *entries]:
                info = tarfile.TarInfo(str(Path(folder.name) / p.relative_to(folder)))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if p.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    data = p.read_bytes()
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
    return sha256_of(out)


def _download(url: str, dest: Path, echo: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, dest.open("wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) if sys.stdout.isatty() else 0
            done = 0
            for block in iter(lambda: resp.read(1 << 20), b""):
                f.write(block)
                done += len(block)
                if echo and total:
                    print(f"\r  {done / 1e6:.1f} / {total / 1e6:.1f} MB", end="", flush=True)
            if echo and total:
                print()
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise ValueError(f"download of {url} failed: {reason}") from None


def _safe_members(tar: tarfile.TarFile, top: str) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        parts = Path(m.name).parts
        if Path(m.name).is_absolute() or ".." in parts or not (m.isfile() or m.isdir()):
            raise ValueError(f"archive entry {m.name!r} is not a plain file or folder inside the archive")
        if parts[:1] != (top,):
            raise ValueError(f"archive entry {m.name!r} is outside its top-level folder {top!r}")
    return members


def fetch(
    name: str = "pogema-benchmark",
    url: str | None = None,
    sha256: str | None = None,
    dest: str | Path | None = None,
    force: bool = False,
    echo: bool = True,
) -> Path:
    """Download, verify and unpack dataset ``name`` into the data folder; returns the dataset's folder.

    A present folder is kept unless ``force``; a sha256 mismatch leaves nothing behind.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    ds = DATASETS[name]
    url = url or os.environ.get(URL_ENV, "").strip() or ds.url
    want = (sha256 or ds.sha256).lower()
    root = Path(dest).expanduser() if dest else paths.data_dir()
    target = root / ds.folder
    if target.is_dir() and not force:
        if echo:
            print(f"{name}: already in {target} (--force downloads it again)")
        return target
    if not url:
        raise ValueError(
            f"no download URL configured for {name}: pass --url URL or set {URL_ENV} (an archive made by "
            f"`srmt data pack`, sha256 {want[:12]}...); or set {paths.DATA_ENV} to a folder holding {ds.folder}/"
        )
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{ds.folder}-") as tmp:
        archive = Path(tmp) / "archive.tar.gz"
        if echo:
            print(f"{name}: downloading {url}")
        _download(url, archive, echo)
        got = sha256_of(archive)
        if got != want:
            raise ValueError(f"{name}: sha256 of {url} is {got}, expected {want}; nothing was unpacked")
        unpacked = Path(tmp) / "unpacked"
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _safe_members(tar, ds.folder)  # no absolute paths, no '..', no links
                # tarfile's own "data" filter where this Python has it (3.10.12+, 3.11.4+) checks again
                extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(unpacked, members=members, **extra)
        except tarfile.TarError as e:
            raise ValueError(f"{name}: {url} is not a .tar.gz archive ({e})") from None
        if target.exists():
            shutil.rmtree(target)
        (unpacked / ds.folder).replace(target)
    if echo:
        print(f"{name}: {target} ({ds.licence}; source {ds.source})")
    return target


def cmd_list() -> int:
    root = paths.data_dir()
    origin = f"${paths.DATA_ENV}" if os.environ.get(paths.DATA_ENV, "").strip() else "default"
    print(f"data folder ({origin}): {root}")
    for name, ds in DATASETS.items():
        try:
            where = str(paths.resolve(ds.folder, kind="dir"))
        except ValueError:
            where = "missing: `srmt data fetch" + ("" if name == "pogema-benchmark" else f" {name}") + "`"
        print(f"  {name:<18} {where}\n  {'':<18} {ds.what} ({ds.licence})")
    print(f"package data: {paths.PACKAGE_DATA} (FollowerLite checkpoint, MIT)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0
    p = argparse.ArgumentParser(prog="srmt data", add_help=False)
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("list")
    f = sub.add_parser("fetch")
    f.add_argument("name", nargs="?", default="pogema-benchmark", choices=sorted(DATASETS))
    f.add_argument("--url")
    f.add_argument("--sha256")
    f.add_argument("--dir")
    f.add_argument("--force", action="store_true")
    k = sub.add_parser("pack")
    k.add_argument("folder")
    k.add_argument("out")
    try:
        a = p.parse_args(argv)
    except SystemExit as e:  # argparse printed its one-line error already
        return int(e.code or 2)
    try:
        if a.cmd == "fetch":
            fetch(a.name, a.url, a.sha256, a.dir, a.force)
            return 0
        if a.cmd == "pack":
            digest = pack(Path(a.folder), Path(a.out))
            print(f"{a.out}: sha256 {digest}")
            return 0
        return cmd_list()
    except ValueError as e:
        print(f"srmt data: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
