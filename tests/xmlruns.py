"""Shared by the parser tests that compare backends: the two backend modules and one
way to feed a stream to either."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from xmppx.core._api import XMLStreamError

PY: ModuleType = importlib.import_module("xmppx.core._py")
try:
    NATIVE: ModuleType | None = importlib.import_module("xmppx._native")
except ImportError:  # pragma: no cover - only without a built extension
    NATIVE = None


def feed_all(core: ModuleType, chunks: list[bytes], **limits: int) -> tuple[list[Any], str | None]:
    """Every event a fresh parser returns for ``chunks`` (those carried by an error
    included) and the error condition, ``None`` if there was none."""
    parser = core.StreamParser(**limits)
    events: list[Any] = []
    try:
        for chunk in chunks:
            events.extend(parser.feed(chunk))
    except XMLStreamError as exc:
        events.extend(exc.events)
        return events, exc.condition
    return events, None
