"""The issue-3 load tool: the same scenarios against xmppx, Prosody and ejabberd.

Run from the repository root (``benches/load_README.md`` has the details)::

    python -m benches.load --servers xmppx,prosody,ejabberd --rounds 3 --quick

Each server is started by this tool with its own configuration and data directory in a
temporary directory, on its own loopback port, pinned to one core; the load generator runs
pinned to the other core.  Scenarios: login storm, idle authenticated connections, and
one-to-one chat at stepped offered rates.  The result is a JSON file and a Markdown table
of the xmppx / ejabberd and xmppx / Prosody ratios.
"""

__all__: list[str] = []
