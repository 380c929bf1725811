"""Test-session set-up: the POGEMA benchmark data of a development checkout.

Developers and CI keep the benchmark data in ``../shared/data`` beside the clone; commands find data
through the path rule of :mod:`configs.paths`, so that folder becomes the data folder (``SRMT_DATA``)
unless one is set already. Tests that need the data skip when neither holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("SRMT_DATA") and _SHARED.is_dir():
    os.environ["SRMT_DATA"] = str(_SHARED)

# sample-factory's logger gets its StreamHandler at import, holding the sys.stderr of that moment. Imported
# first inside a test, that is the test's capture stream, closed after it: every later sample-factory log
# line then prints "--- Logging error --- ... I/O operation on closed file" with a traceback to stderr
# (which broke a test that checks stderr for tracebacks). Import it here, at collection, so the handler
# holds the session's stream.
import sample_factory.utils.utils  # noqa: E402, F401
