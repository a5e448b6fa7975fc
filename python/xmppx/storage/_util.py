"""Argument checks and conversions shared by both drivers (pure, no I/O)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import cast

from xmppx.storage._protocols import MAX_PAGE_SIZE
from xmppx.storage._records import JsonValue

__all__ = [
    "check_limit",
    "check_quota",
    "dedupe_jids",
    "dump_config",
    "load_config",
    "redact_url",
    "require_aware",
]


def require_aware(name: str, value: datetime) -> None:
    """``ValueError`` unless ``value`` is timezone-aware (naive times are ambiguous)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


def check_limit(limit: int) -> None:
    """``ValueError`` unless ``1 <= limit <= MAX_PAGE_SIZE``."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")


def check_quota(quota: int) -> None:
    """``ValueError`` for a negative quota."""
    if quota < 0:
        raise ValueError(f"quota must be >= 0, got {quota}")


def dedupe_jids(jids: Iterable[str]) -> tuple[str, ...]:
    """``jids`` in the given order without repeats; ``ValueError`` on an empty string
    (also when a single ``str`` is passed by mistake, which would iterate characters)."""
    if isinstance(jids, str):
        raise ValueError("expected an iterable of JIDs, got a single str")
    unique = tuple(dict.fromkeys(jids))
    if "" in unique:
        raise ValueError("a JID must not be empty")
    return unique


def dump_config(config: Mapping[str, JsonValue]) -> str:
    """The room configuration as compact JSON text (keys sorted, Unicode kept)."""
    return json.dumps(
        config, ensure_ascii=False, sort_keys=True, allow_nan=False, separators=(",", ":")
    )


def load_config(text: str) -> dict[str, JsonValue]:
    """The room configuration stored by :func:`dump_config`."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("stored room config is not a JSON object")
    return cast(dict[str, JsonValue], value)


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or a ``password=`` query parameter)
    replaced by ``***``, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
        authority = f"{userinfo}@{hostport}"
    tail = re.sub(r"(?i)(password=)[^&]*", r"\1***", tail)
    return f"{scheme}://{authority}{tail}"
