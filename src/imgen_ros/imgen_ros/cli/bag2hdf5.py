"""``imgen bag2hdf5 BAGS... --out F``: recorded episode bags -> the robomimic dataset `imgen generate imgen` takes.

Each BAG is an episode bag directory written by the recorder node, or a directory of them. Steps
are the commands the arbiter executed (HOLD steps dropped), labelled from the control state:
HUMAN -> action_mode 1, POLICY -> 0 (see imgen_ros.data.bag_episode). Every episode goes to the
``source`` mask, those with human steps also to ``interventions``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imgen_ros.cli.main import CliError

META = "metadata.yaml"


def expand_bags(paths: list[str]) -> list[Path]:
    """Bag directories named directly, or the bag directories inside a named folder (sorted)."""
    bags: list[Path] = []
    for item in paths:
        path = Path(item)
        if (path / META).is_file():
            bags.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if (p / META).is_file())
            if not found:
                raise CliError(f"{path}: neither a rosbag2 directory nor a folder of them")
            bags.extend(found)
        else:
            raise CliError(f"{path}: no such bag directory")
    return bags


def run(args: argparse.Namespace) -> int:
    from imgen_ros.data.bag import bag_custom_data
    from imgen_ros.data.bag_episode import bag_to_episode
    from imgen_ros.data.validate import validate_dataset
    from imgen_ros.data.writer import DatasetWriter
    from imgen_ros.sim import TASK_NAMES, make_env

    bags = expand_bags(args.bags)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CliError(f"{out} exists; pass --overwrite to replace it")
    customs = [bag_custom_data(b) for b in bags]
    tasks = {args.task or c.get("imgen_task", "") for c in customs}
    if len(tasks) != 1 or "" in tasks:
        raise CliError(f"bags were recorded on tasks {sorted(tasks)}; convert one task at a time or pass --task")
    task = tasks.pop()
    if task not in TASK_NAMES:
        raise CliError(f"unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    noise = args.noise or customs[0].get("imgen_noise", "on")
    observability = args.observability or customs[0].get("imgen_observability", "full")
    try:
        env = make_env(task, noise=noise, observability=observability)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if any(s.term_signal is not None for s in env.subtasks):
        raise CliError(f"task {task!r} has subtask signals (contacts) that recordings do not carry; "
                       "bag2hdf5 supports single-subtask tasks (block_grasp)")
    episodes = []
    for bag in bags:
        try:
            converted = bag_to_episode(bag, env.task.object_names, observability)
        except ValueError as exc:
            if args.skip_bad:
                print(f"skipped {bag}: {exc}")
                continue
            raise CliError(str(exc)) from exc
        episodes.append(converted)
    if not episodes:
        raise CliError("no convertible episode among the bags")
    if out.exists():
        out.unlink()
    with DatasetWriter(out, env.env_args()) as writer:
        writer.set_json_attr("imgen_config", {"command": "bag2hdf5", "bags": [str(b) for b in bags],
                                              "noise": noise, "observability": observability})
        for item in episodes:
            masks = ["source"] + (["interventions"] if item.human_steps else [])
            name = writer.append(item.episode, masks=masks)
            print(f"{name}: {item.path.name}: {item.episode.num_samples} steps, {item.human_steps} human, "
                  f"{item.skipped_hold} hold dropped, outcome {item.outcome}")
    validate_dataset(out, require_imgen=True)
    env.close()
    print(f"wrote {out}: {len(episodes)} episodes, {sum(e.human_steps > 0 for e in episodes)} with interventions")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bag2hdf5", help="recorded episode bags (rosbag2) -> robomimic hdf5 with labels")
    p.add_argument("bags", nargs="+", metavar="BAG", help="episode bag directories (or folders of them)")
    p.add_argument("--out", required=True, help="robomimic hdf5 to write")
    p.add_argument("--task", default=None, help="task (default: from the bags' metadata)")
    p.add_argument("--noise", default=None, help="env_args noise (default: from the bags' metadata)")
    p.add_argument("--observability", default=None, choices=("full", "partial", "none"))
    p.add_argument("--skip-bad", action="store_true", help="skip bags that cannot be converted instead of failing")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)
