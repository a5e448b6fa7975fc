"""What the kernel says about a process tree: CPU time and resident memory from /proc,
core pinning and the open-files limit.  Linux only."""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "CLOCK_TICKS",
    "NOFILE_WANTED",
    "ProcSample",
    "children_of",
    "cores_busy_s",
    "peak_rss_bytes",
    "raise_nofile_limit",
    "reset_peak_rss",
    "sample_tree",
    "tree_pids",
]

#: /proc/<pid>/stat counts CPU time in clock ticks (USER_HZ, 100 on Linux).
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")

#: Open files wanted for 10 000 connections on each side plus the servers' own files.
NOFILE_WANTED: Final = 65_536


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcSample:
    """CPU seconds (user + system, all threads), seconds spent runnable but waiting for a
    core (all threads; 0 when schedstat is unavailable) and resident bytes of a tree."""

    cpu_s: float
    wait_s: float
    rss_bytes: int
    pids: tuple[int, ...]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def children_of() -> dict[int, list[int]]:
    """ppid -> child pids, for every process now."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None:
            continue
        out.setdefault(int(fields[1]), []).append(int(entry))
    return out


def tree_pids(root: int) -> tuple[int, ...]:
    """``root`` and all its descendants (bounded by the number of processes)."""
    kids = children_of()
    seen = [root]
    i = 0
    while i < len(seen):
        seen.extend(k for k in kids.get(seen[i], ()) if k not in seen)
        i += 1
    return tuple(seen)


def _sched_ns(pid: int) -> tuple[int, int] | None:
    """(run time, run-queue wait) of all live threads of ``pid`` in ns
    (``/proc/<pid>/task/*/schedstat``, fields 1 and 2), or ``None`` without schedstat."""
    run = wait = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0, 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as fh:
                fields = fh.read().split()
            run += int(fields[0])
            wait += int(fields[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
        except (PermissionError, OSError, ValueError, IndexError):
            return None
    return run, wait


def sample_tree(root: int, pids: tuple[int, ...] | None = None) -> ProcSample:
    """CPU time and RSS summed over ``pids`` (default: ``root`` and its descendants now).

    CPU: the scheduler's run time of every thread in ns (``schedstat``), which resolves
    a few microseconds per message where ``/proc/<pid>/stat``'s utime + stime (fields 14,
    15) only has 10 ms ticks; those are the fallback.  RSS: field 24 of ``stat`` (pages).
    """
    pids = tree_pids(root) if pids is None else pids
    ticks = 0
    ns = wait_ns = 0
    exact = True
    pages = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # fields[0] is field 3 (state): field n is fields[n - 3].
        ticks += int(fields[11]) + int(fields[12])
        pages += int(fields[21])
        if exact:
            sched = _sched_ns(pid)
            if sched is None:
                exact = False
            else:
                ns += sched[0]
                wait_ns += sched[1]
    cpu = ns / 1e9 if exact else ticks / CLOCK_TICKS
    wait = wait_ns / 1e9 if exact else 0.0
    return ProcSample(cpu_s=cpu, wait_s=wait, rss_bytes=pages * _PAGE, pids=pids)


def raise_nofile_limit(wanted: int = NOFILE_WANTED) -> int:
    """Raise RLIMIT_NOFILE (soft, and hard when allowed: root) to ``wanted``; children
    started afterwards inherit it.  Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cores_busy_s(cpus: tuple[int, ...]) -> float:
    """Seconds the cores ``cpus`` spent running anything (user, nice, system, irq,
    softirq) or stolen by the hypervisor (steal), from /proc/stat.  The difference of two
    readings minus our own processes' CPU is what other processes took from those cores
    (other engineers' builds and tests, say)."""
    total = 0
    wanted = {f"cpu{c}" for c in cpus}
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            name, _, rest = line.partition(" ")
            if name in wanted:
                f = [int(x) for x in rest.split()]
                # user nice system idle iowait irq softirq steal ...
                total += f[0] + f[1] + f[2] + f[5] + f[6] + f[7]
    return total / CLOCK_TICKS


def reset_peak_rss(pids: tuple[int, ...]) -> bool:
    """Reset the peak RSS (``VmHWM``) of ``pids`` to their current RSS by writing 5 to
    ``/proc/<pid>/clear_refs`` (Linux >= 4.0; our own processes or root).  False when a
    process refused: then ``peak_rss_bytes`` is the peak since that process started."""
    ok = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
        except OSError:
            ok = False
    return ok


def peak_rss_bytes(pids: tuple[int, ...]) -> int:
    """Sum of ``VmHWM`` (peak resident set since the last ``reset_peak_rss``) of ``pids``."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            continue
    return total
