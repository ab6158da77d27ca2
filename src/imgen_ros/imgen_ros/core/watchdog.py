"""Stale-input watchdog: named inputs, each with a time-out, fed with arrival times (ROS-free).

Arrival times come from one monotonic clock on the receiving side, so the watchdog does not depend
on clock agreement between machines. An input never seen counts as stale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


class Watchdog:
    """Track when each named input last arrived and report which are older than their time-out."""

    def __init__(self, timeouts_s: Mapping[str, float]) -> None:
        self.timeouts_s: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self.retime(timeouts_s)

    def retime(self, timeouts_s: Mapping[str, float]) -> None:
        """Replace the time-outs (e.g. a live parameter change); arrival times are kept."""
        for name, timeout in timeouts_s.items():
            if not (math.isfinite(timeout) and timeout > 0):
                raise ValueError(f"watchdog time-out for {name!r} must be a positive number, got {timeout!r}")
        self.timeouts_s = dict(timeouts_s)

    def feed(self, name: str, now: float) -> None:
        """Record that ``name`` arrived at ``now``."""
        if name not in self.timeouts_s:
            raise KeyError(f"unknown watchdog input {name!r}; known: {sorted(self.timeouts_s)}")
        self._last[name] = now

    def forget(self, name: str) -> None:
        """Treat ``name`` as never seen (e.g. a device that reported itself dead)."""
        self._last.pop(name, None)

    def age(self, name: str, now: float) -> float:
        """Seconds since ``name`` last arrived (inf if never)."""
        last = self._last.get(name)
        return math.inf if last is None else now - last

    def is_stale(self, name: str, now: float) -> bool:
        return self.age(name, now) > self.timeouts_s[name]

    def stale(self, now: float, names: Iterable[str] | None = None) -> list[str]:
        """The stale inputs among ``names`` (default: all), in configuration order."""
        wanted = self.timeouts_s if names is None else list(names)
        return [n for n in wanted if self.is_stale(n, now)]

    def deadline(self, name: str) -> float:
        """Time at which ``name`` becomes stale (-inf if never seen)."""
        last = self._last.get(name)
        return -math.inf if last is None else last + self.timeouts_s[name]
