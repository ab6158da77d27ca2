"""Data generation throughput and success rates.

1. I-MG on block_grasp with the expert policy (naive expert on observed poses), 10 source
   interventions, ``--workers`` local worker processes: successful interventions per minute
   (end to end: worker start-up, generation, journal and hdf5 writing), and the floor: the same
   attempts' physics (``env.reset``/``env.step``) plus policy inference time, spread over the
   workers. ratio = measured rate / floor rate (1.0 = no overhead beyond physics + inference).
   Targets: >= 350 interventions/min and ratio >= 0.5.
2. MimicGen (and I-MG) generation success rates per task from 10 source demos (interventions).

    scripts/with-env python bench/bench_datagen.py [--n 300] [--workers 2] [--rate-n 20] [--tasks ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from imgen_ros.datagen.collect import CollectConfig, collect
from imgen_ros.datagen.episodes import GenerationParams
from imgen_ros.datagen.job import GenerationJob
from imgen_ros.datagen.runner import RunOptions, RunReport, run_generation
from imgen_ros.sim import TASK_NAMES

TARGET_RATE = 350.0
TARGET_RATIO = 0.5


def throughput(report: RunReport, workers: int) -> tuple[float, float, float]:
    """(measured eps/min, floor eps/min, ratio)."""
    rate = report.kept / report.wall_s * 60.0
    floor_s = (report.timing["physics_s"] + report.timing["policy_s"]) / workers
    floor_rate = report.kept / floor_s * 60.0
    return rate, floor_rate, rate / floor_rate


def bench_imgen(tmp: Path, n: int, workers: int) -> bool:
    source = tmp / "block_grasp_interventions.hdf5"
    collect(CollectConfig(task="block_grasp", kind="interventions", episodes=10, seed=0), source)
    ok = True
    for selection in ("random", "nearest"):
        job = GenerationJob(kind="imgen", task="block_grasp", source=str(source), policy="expert", seed=0,
                            params=GenerationParams(selection=selection))
        out = tmp / f"imgen_{selection}.hdf5"
        report = run_generation(job, out, RunOptions(n=n, workers=workers, progress=False))
        rate, floor_rate, ratio = throughput(report, workers)
        met = rate >= TARGET_RATE and ratio >= TARGET_RATIO
        ok = ok and (met or selection != "random")
        print(f"imgen block_grasp expert selection={selection:7s} workers={workers}: {report.kept} kept / "
              f"{report.attempts} attempts ({report.success_rate:.1%}) in {report.wall_s:.1f} s -> "
              f"{rate:.0f} interventions/min; floor (physics {report.timing['physics_s']:.1f} s + policy "
              f"{report.timing['policy_s']:.2f} s over {workers} workers) {floor_rate:.0f}/min; ratio {ratio:.2f}; "
              f"in-attempt total {report.timing['attempt_s']:.1f} s, "
              f"main process cpu {report.timing['main_cpu_s']:.1f} s "
              f"[target >= {TARGET_RATE:.0f}/min, >= {TARGET_RATIO}: {'met' if met else 'NOT met'}]", flush=True)
    return ok


def bench_success_rates(tmp: Path, tasks: list[str], n: int, workers: int) -> None:
    print(f"generation success rates (10 sources, {n} kept, seed 0, {workers} workers):")
    for task in tasks:
        demos, interventions = tmp / f"{task}_demos.hdf5", tmp / f"{task}_interventions.hdf5"
        t0 = time.perf_counter()
        collect(CollectConfig(task=task, kind="demos", episodes=10, seed=0), demos)
        collect(CollectConfig(task=task, kind="interventions", episodes=10, seed=0), interventions)
        mg = run_generation(GenerationJob(kind="mimicgen", task=task, source=str(demos)), tmp / f"{task}_mg.hdf5",
                            RunOptions(n=n, workers=workers, progress=False))
        ig = run_generation(GenerationJob(kind="imgen", task=task, source=str(interventions), policy="expert"),
                            tmp / f"{task}_imgen.hdf5", RunOptions(n=n, workers=workers, progress=False))
        mistakes = ig.attempts - ig.outcomes.get("no_mistake_success", 0) - ig.outcomes.get("no_mistake_timeout", 0)
        print(f"  {task:20s} mimicgen {mg.success_rate:6.1%} ({mg.kept}/{mg.attempts})   "
              f"imgen {ig.success_rate:6.1%} ({ig.kept}/{ig.attempts}; recovered/mistakes "
              f"{ig.kept}/{mistakes})   [{time.perf_counter() - t0:.0f} s]", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="I-MG interventions to generate per selection mode")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate-n", type=int, default=20, help="kept episodes per task for success rates")
    parser.add_argument("--tasks", nargs="*", default=list(TASK_NAMES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_datagen_") as tmp:
        ok = bench_imgen(Path(tmp), args.n, args.workers)
        if args.tasks:
            bench_success_rates(Path(tmp), args.tasks, args.rate_n, args.workers)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
