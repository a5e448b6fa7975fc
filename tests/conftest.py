"""Shared fixtures.  ``core`` runs a test once per available backend (ids ``native`` and
``python``), as DESIGN.md §3.8 asks; on a checkout without the built extension the native
run is skipped with the reason."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest
from hypothesis import settings

# Property tests run the same examples on every run (a failure is reproducible and CI is
# not flaky) and without a per-example deadline (the machine is shared and noisy).
# ``--hypothesis-seed`` or ``HYPOTHESIS_PROFILE=explore`` search anew while developing.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Fixtures of a real PostgreSQL server (``postgres_server``, ``driver``, ``storage_url``).
pytest_plugins = ["tests.postgres"]

BACKENDS = ("native", "python")


def load_backend(name: str) -> ModuleType:
    """The module implementing backend ``name`` (``xmppx._native`` or ``xmppx.core._py``)."""
    if name == "native":
        return importlib.import_module("xmppx._native")
    return importlib.import_module("xmppx.core._py")


@pytest.fixture(params=BACKENDS)
def core(request: pytest.FixtureRequest) -> ModuleType:
    try:
        return load_backend(request.param)
    except ImportError as exc:  # pragma: no cover - only without a built extension
        if os.environ.get("XMPPX_REQUIRE_NATIVE") == "1":
            raise  # CI builds the extension: a missing one is a failure, not a skip
        pytest.skip(f"backend {request.param} not importable: {exc}")
