"""Shared argparse pieces for ``imgen``: bounded numeric types and a parser whose errors are one line.

Every numeric argument of every command takes one of the :class:`Bounded` types below, so a value
out of range, non-numeric, NaN or infinite is refused at parse time (exit 2) with one line naming
the argument and its range. ``Bounded.doc(help)`` appends the range to the ``--help`` text.

Upper bounds of the memory/time-sized arguments fit a workstation (tens of GB of RAM, a few to a
few hundred cores); they are far above every documented protocol (the paper's: 2000 epochs x 100
steps, batch 100, sequence 10, 50 trials, 1000 generated episodes).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True)
class Bounded:
    """An argparse ``type``: an int (``kind`` int) or finite float in ``[lo, hi]``."""

    kind: type
    lo: float
    hi: float
    why: str = ""  # what sets the upper bound, shown in --help (e.g. "max set by memory")

    def __post_init__(self) -> None:
        if not self.lo <= self.hi:
            raise ValueError(f"empty range [{self.lo}, {self.hi}]")

    @property
    def kind_name(self) -> str:
        return "integer" if self.kind is int else "number"

    @property
    def range_text(self) -> str:
        """E.g. ``integer in [1, 100]`` or ``number in [0, 1]``."""
        fmt = (lambda x: str(int(x))) if self.kind is int else (lambda x: f"{x:g}")
        return f"{self.kind_name} in [{fmt(self.lo)}, {fmt(self.hi)}]"

    def doc(self, help_text: str = "") -> str:
        """``help_text`` with the accepted range appended (for ``add_argument(help=...)``)."""
        bound = self.range_text + (f", {self.why}" if self.why else "")
        if help_text.endswith(")"):  # "... (default 3)" -> "... (default 3; integer in [1, 1000])"
            return f"{help_text[:-1]}; {bound})"
        return f"{help_text} ({bound})" if help_text else bound

    def __call__(self, text: str) -> int | float:
        article = "an" if self.kind is int else "a finite"
        try:
            if not text.isascii():  # int() and float() also read Arabic-Indic and full-width digits
                raise ValueError(text)
            value: int | float = int(text, 10) if self.kind is int else float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {article} {self.range_text}, got {text!r}") from None
        if not math.isfinite(value) or not self.lo <= value <= self.hi:
            raise argparse.ArgumentTypeError(f"expected {article} {self.range_text}, got {text!r}")
        return value


MEMORY = "max set by memory"


def bounded_int(lo: int, hi: int, why: str = "") -> Bounded:
    """Integers ``lo <= n <= hi`` (decimal digits only: '1e3' and '2.0' are refused)."""
    return Bounded(int, lo, hi, why)


def bounded_float(lo: float, hi: float, why: str = "") -> Bounded:
    """Finite floats ``lo <= x <= hi`` (NaN and +-inf are refused)."""
    return Bounded(float, lo, hi, why)


def path_arg(text: str) -> str:
    """An argparse ``type`` for a file or directory argument: refuses an empty or blank one, which
    ``Path`` would silently read as the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 (os.fsdecode's surrogates): HDF5, matplotlib and
        # rosbag2 cannot name such a file, and would fail after the work was done
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        raise argparse.ArgumentTypeError(f"the path '{shown}' is not valid UTF-8; rename it") from None
    return text


def device_arg(text: str) -> str:
    """An argparse ``type`` for ``--device``: ``cpu``, ``cuda`` or ``cuda:N``, the devices imgen runs on (torch
    itself also takes ``meta``, ``mps``, ``cpu:99``, ... and fails later or ignores them)."""
    if re.fullmatch(r"cpu|cuda(:[0-9]+)?", text) is None:
        raise argparse.ArgumentTypeError(f"not a torch device imgen runs on: expected cpu, cuda or cuda:N, "
                                         f"got {text!r}")
    return text


def device_unavailable(device: str) -> str | None:
    """Why this machine cannot run on ``device`` (a :func:`device_arg` value): no CUDA, or no such CUDA index."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"--device {device!r}: CUDA is not available on this machine"
    index, count = int(device.partition(":")[2] or 0), torch.cuda.device_count()
    if index >= count:
        return f"--device {device!r}: this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})"
    return None


# Shared ranges (one definition per kind of quantity).
SEED = bounded_int(0, 2**31 - 1)                   # numpy/torch/MuJoCo seeds; episode i uses seed + i
EPISODES = bounded_int(1, 100_000, MEMORY)         # simulated episodes/trials (results/episodes kept in memory)
THREADS = bounded_int(1, 512)                      # torch intra-op threads
WORKERS = bounded_int(1, 64, MEMORY)               # one process per worker, each with its own MuJoCo/torch


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit 2), with a pointer to --help."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)
