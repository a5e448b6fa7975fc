"""The load tool of issues 3, 4 and 5: the same scenarios against xmppx, Prosody and
ejabberd.

Run from the repository root (``benches/load_README.md`` has the details)::

    python -m benches.load --servers xmppx,prosody,ejabberd --rounds 3 --quick

Each server is started by this tool with its own configuration and data directory in a
temporary directory, on its own loopback port, pinned to one core; the load generator runs
pinned to the other core.  Scenarios: login storm, idle authenticated connections,
one-to-one chat at stepped offered rates (issue 3); presence storm, 1 000-item roster
fetch, offline store and flush (issue 4, RFC 6121); MUC fan-out in one large room and in
many small ones at stepped rates (issue 5, XEP-0045).  The result is a JSON file and
Markdown tables of the xmppx / ejabberd and xmppx / Prosody ratios.
"""

__all__: list[str] = []
