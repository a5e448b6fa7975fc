"""Benchmarks run with ``pytest benches --benchmark-enable`` (see ``benches/README.md``).

The xmppx package is used as installed (``pip install .`` or ``maturin develop``); on a
checkout where it is not installed, the source tree's ``python/`` is put on the path so
that the pure-Python backend still runs (the native one then skips)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("xmppx") is None:  # pragma: no cover - depends on the install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
