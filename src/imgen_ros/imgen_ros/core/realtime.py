"""Run a command under SCHED_FIFO when the host allows it, and without real-time priority (with a
warning) when it does not.

    python3 -m imgen_ros.core.realtime --priority 80 -- /path/to/intervention_arbiter --ros-args ...

The real launch file uses this as the arbiter's ``prefix`` instead of ``chrt -f 80``: chrt exits
with an error where the user has no rtprio limit (a plain Docker container, a laptop without
/etc/security/limits.d), which would end the launch; here the arbiter still starts, and says that
its 200 Hz watchdog now competes with other load. The scheduling policy survives ``exec``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

PRIORITY_RANGE = (0, 99)  # SCHED_FIFO priorities; 0 = normal scheduling


def set_fifo_priority(priority: int) -> str | None:
    """Make this process SCHED_FIFO at ``priority`` (1..99); None on success, else why not."""
    if priority <= 0:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        return (f"real-time priority {priority} (SCHED_FIFO) not granted: no rtprio limit for this user "
                "(add one in /etc/security/limits.d, or `ulimit -r`; docker/compose.yaml sets it); "
                "running with normal scheduling")
    except OSError as err:
        return f"real-time priority {priority} (SCHED_FIFO) failed: {err.strerror}; running with normal scheduling"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m imgen_ros.core.realtime", description=__doc__.splitlines()[0])
    parser.add_argument("--priority", type=int, required=True, help="SCHED_FIFO priority 1..99; 0 = normal")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    low, high = PRIORITY_RANGE
    if not low <= args.priority <= high:
        parser.error(f"--priority must be in {low}..{high}, got {args.priority}")
    warning = set_fifo_priority(args.priority)
    if warning:
        print(f"[imgen realtime] WARNING: {warning}", file=sys.stderr, flush=True)
    try:
        os.execvp(command[0], command)
    except OSError as err:
        print(f"[imgen realtime] cannot run {command[0]}: {err.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
