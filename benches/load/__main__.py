"""``python -m benches.load``: see ``benches/load_README.md``."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
