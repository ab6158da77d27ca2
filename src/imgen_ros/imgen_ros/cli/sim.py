"""``imgen sim ...``: simulation commands. ``imgen sim rollout`` runs the naive scripted expert or the
simulated human in a task and reports success.

Other modules extend the ``sim`` group: any ``imgen_ros.cli.sim_<name>`` module defining
``register_sim(sim_subparsers)`` (and no ``register``) gets its sub-commands added here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import time

import imgen_ros.cli as cli_package
from imgen_ros.cli._args import EPISODES, SEED
from imgen_ros.cli.main import CliError
from imgen_ros.sim.human import DEFAULT_HUMAN, HUMAN_MODELS

POLICIES = ("expert", "human")


def _make_policy(env, name: str, human: str = "operator"):
    """The naive expert, or (``human``) the naive expert under the simulated human model ``human``."""
    from imgen_ros.sim.expert import ScriptedExpert
    from imgen_ros.sim.human import make_human

    naive = ScriptedExpert(env, use_true_poses=False)
    return naive if name == "expert" else make_human(human, env, naive)


def validate_episode_args(args: argparse.Namespace) -> None:
    """Check --task/--policy/--observability/--episodes, shared by every `imgen sim` command."""
    from imgen_ros.sim import OBSERVABILITY_MODES, TASK_NAMES

    if args.task not in TASK_NAMES:
        raise CliError(f"unknown task {args.task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if args.policy not in POLICIES:
        raise CliError(f"unknown policy {args.policy!r}; valid policies: {', '.join(POLICIES)}")
    if args.observability not in OBSERVABILITY_MODES:
        raise CliError(f"unknown observability {args.observability!r}; valid: {', '.join(OBSERVABILITY_MODES)}")
    if args.episodes < 1:
        raise CliError(f"--episodes must be >= 1, got {args.episodes}")


def add_episode_args(parser: argparse.ArgumentParser, episodes: int) -> None:
    """The episode arguments shared by ``imgen sim rollout`` and ``imgen sim video``."""
    parser.add_argument("--task", required=True, help="block_grasp, nut_insertion, two_piece_assembly, coffee, "
                                                      "nut_peg_assembly")
    parser.add_argument("--policy", default="expert", help="expert (acts on observed poses) or human "
                                                           "(expert + simulated-human interventions)")
    parser.add_argument("--human", choices=HUMAN_MODELS, default=DEFAULT_HUMAN,
                        help=f"simulated human of --policy human (default {DEFAULT_HUMAN}: takes over on what it sees, "
                             "late, moves like a teleoperator; oracle: the scripted expert on the mistake detector)")
    parser.add_argument("--noise", default="off", help="off, on (or mixture for nut_peg_assembly)")
    parser.add_argument("--observability", default="full", help="full, partial or none")
    parser.add_argument("--episodes", type=EPISODES, default=episodes, help=EPISODES.doc(f"default {episodes}"))
    parser.add_argument("--seed", type=SEED, default=0, help=SEED.doc("seed of the first episode (then +1 each)"))


def run_rollout(args: argparse.Namespace) -> int:
    from imgen_ros.sim import make_env
    from imgen_ros.sim.rollout import run_episode

    validate_episode_args(args)
    try:
        env = make_env(args.task, noise=args.noise, observability=args.observability)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    policy = _make_policy(env, args.policy, args.human)
    start = time.perf_counter()
    results = []
    for i in range(args.episodes):
        result = run_episode(env, policy, args.seed + i)
        results.append(result)
        if not args.json:
            print(f"episode {i} seed {result.seed}: {'success' if result.success else 'failure'} "
                  f"steps={result.steps} intervened={result.intervened}", flush=True)
    env.close()
    wall = time.perf_counter() - start
    successes = sum(r.success for r in results)
    summary = {
        "task": args.task, "policy": args.policy, "human": args.human if args.policy == "human" else None,
        "noise": args.noise, "observability": args.observability,
        "seed": args.seed, "episodes": len(results), "successes": successes,
        "success_rate": successes / len(results),
        "interventions": sum(r.intervened for r in results),
        "mean_steps": sum(r.steps for r in results) / len(results),
        "wall_s": round(wall, 3),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.task} policy={args.policy} noise={args.noise}: success {successes}/{len(results)} "
              f"({summary['success_rate']:.2f}), interventions {summary['interventions']}, "
              f"mean steps {summary['mean_steps']:.1f}, {wall:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sim", help="MuJoCo simulation: scripted rollouts")
    sim_sub = parser.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)
    rollout = sim_sub.add_parser("rollout", help="run the naive expert (expert) or expert + simulated human (human)")
    add_episode_args(rollout, episodes=10)
    rollout.add_argument("--json", action="store_true", help="print one JSON summary line")
    rollout.set_defaults(func=run_rollout)
    for info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if info.name.startswith("sim_"):
            module = importlib.import_module(f"imgen_ros.cli.{info.name}")
            extend = getattr(module, "register_sim", None)
            if extend is not None:
                extend(sim_sub)
