"""Run every benchmark module ``bench/bench_*.py`` (or those named) and print their figures.

    make bench                         # all
    scripts/with-env scripts/netns-run python -m bench sim datagen   # bench_sim.py, bench_datagen.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    modules = sorted(HERE.glob("bench_*.py"))
    if argv:
        wanted = {f"bench_{name.removeprefix('bench_').removesuffix('.py')}.py" for name in argv}
        unknown = wanted - {m.name for m in modules}
        if unknown:
            print(f"unknown benchmark(s): {sorted(unknown)}; available: {[m.stem for m in modules]}", file=sys.stderr)
            return 2
        modules = [m for m in modules if m.name in wanted]
    failures = 0
    for module in modules:
        print(f"=== {module.stem} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(module)], cwd=HERE.parent)
        print(f"=== {module.stem}: exit {rc}, {time.perf_counter() - start:.1f} s ===\n", flush=True)
        failures += rc != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
