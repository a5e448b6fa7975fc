"""The README's library example runs and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_library_example_runs_as_documented() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"## The core as a library\n\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its library example"
    code = match.group(1)
    expected = [
        c.strip()
        for c in re.findall(r"#\s*(.+)$", code, re.M)
        if not c.startswith(("limits", "bytes"))
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().splitlines() == expected
