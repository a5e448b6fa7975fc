"""The repository's ``scripts/`` as modules, for tests that check what they generate."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_script(filename: str) -> ModuleType:
    """``scripts/<filename>`` imported as a module (its ``main`` not run)."""
    name = filename.removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
