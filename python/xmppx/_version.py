"""The package version; ``rust/`` crates and ``pyproject.toml`` carry the same number."""

__version__ = "0.1.0"
