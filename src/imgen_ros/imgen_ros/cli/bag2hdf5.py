"""``imgen bag2hdf5 BAGS... --out F``: recorded episode bags -> the robomimic dataset `imgen generate imgen` takes.

Each BAG is an episode bag directory written by the recorder node, or a directory of them. Steps
are the commands the arbiter executed (HOLD steps dropped), labelled from the control state:
HUMAN -> action_mode 1, POLICY -> 0 (see imgen_ros.data.bag_episode). Every episode goes to the
``source`` mask, those with human steps also to ``interventions``.

An unreadable bag (missing or empty directory, no metadata, a missing, truncated or corrupt MCAP
file, an episode without START) stops the conversion with one line naming the bag and file;
``--skip-bad`` skips it instead and names it with the reason. The output is written beside
``--out`` and renamed into place when complete (imgen_ros.data.outputs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imgen_ros.cli._args import path_arg
from imgen_ros.cli.main import CliError

META = "metadata.yaml"


def expand_bags(paths: list[str]) -> list[Path]:
    """Bag candidates: each named path, or the (non-hidden) subdirectories of a named folder of bags (sorted).

    A named directory without ``metadata.yaml`` and without subdirectories (an empty directory, a
    file, a missing path) stays a candidate, so that reading it reports why it is not a bag.
    """
    bags: list[Path] = []
    for item in paths:
        path = Path(item)
        if (path / META).is_file() or not path.is_dir():
            bags.append(path)
            continue
        subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        bags.extend(subdirs or [path])
    return bags


def run(args: argparse.Namespace) -> int:
    from imgen_ros.data.bag import BagError, bag_custom_data
    from imgen_ros.data.bag_episode import bag_to_episode
    from imgen_ros.data.outputs import OutputError, atomic_file, check_file_output
    from imgen_ros.data.validate import validate_dataset
    from imgen_ros.data.writer import DatasetWriter
    from imgen_ros.sim import TASK_NAMES, make_env

    candidates = expand_bags(args.bags)
    seen: dict[Path, Path] = {}
    for bag in candidates:  # one episode converted twice would weigh double in training
        if bag.exists() and (twin := seen.setdefault(bag.resolve(), bag)) is not bag:
            raise CliError(f"bag {bag} is named twice (also as {twin}); name each episode once")
    inputs = [f for b in candidates if b.is_dir() for f in b.iterdir() if f.is_file()]
    try:
        out = check_file_output(args.out, overwrite=args.overwrite, inputs=inputs)
    except OutputError as exc:
        raise CliError(str(exc)) from exc

    def bad(bag: Path, exc: Exception) -> None:
        if not args.skip_bad:
            raise CliError(f"{exc} (pass --skip-bad to skip unreadable bags)") from exc
        print(f"skipped {bag}: {exc}")

    bags: list[Path] = []
    customs: list[dict[str, str]] = []
    for bag in candidates:
        try:
            customs.append(bag_custom_data(bag))
        except BagError as exc:
            bad(bag, exc)
            continue
        bags.append(bag)
    if not bags:
        raise CliError("no readable episode bag among " + ", ".join(args.bags))
    if args.task:  # --task labels bags that name none; it never relabels a recording of another task
        other = [(b, c["imgen_task"]) for b, c in zip(bags, customs, strict=True)
                 if c.get("imgen_task") and c["imgen_task"] != args.task]
        if other:
            raise CliError(f"bag {other[0][0]} was recorded on task {other[0][1]!r}, not --task {args.task!r}; "
                           "--task only labels bags that name no task")
    tasks = {args.task or c.get("imgen_task", "") for c in customs}
    unlabelled = [str(b) for b, c in zip(bags, customs, strict=True) if not (args.task or c.get("imgen_task"))]
    if unlabelled:
        raise CliError(f"bag {unlabelled[0]}{f' (and {len(unlabelled) - 1} more)' if len(unlabelled) > 1 else ''} "
                       "names no task (no imgen_task in its metadata: not an episode bag of imgen's recorder?); "
                       "pass --task")
    if len(tasks) != 1:
        raise CliError(f"bags were recorded on tasks {sorted(tasks)}; convert one task at a time")
    task = tasks.pop()
    if task not in TASK_NAMES:
        raise CliError(f"unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    noise = args.noise or customs[0].get("imgen_noise", "on")
    observability = args.observability or customs[0].get("imgen_observability", "full")
    try:
        env = make_env(task, noise=noise, observability=observability)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        if any(s.term_signal is not None for s in env.subtasks):
            raise CliError(f"task {task!r} has subtask signals (contacts) that recordings do not carry; "
                           "bag2hdf5 supports single-subtask tasks (block_grasp)")
        episodes = []
        for bag in bags:
            try:
                episodes.append(bag_to_episode(bag, env.task.object_names, observability))
            except ValueError as exc:  # BagError included: truncated/corrupt files
                bad(bag, exc)
        if not episodes:
            raise CliError("no convertible episode among the bags")
        try:
            with atomic_file(out, overwrite=args.overwrite, inputs=inputs) as tmp:
                with DatasetWriter(tmp, env.env_args()) as writer:
                    writer.set_json_attr("imgen_config", {"command": "bag2hdf5", "bags": [str(b) for b in bags],
                                                          "noise": noise, "observability": observability})
                    for item in episodes:
                        masks = ["source"] + (["interventions"] if item.human_steps else [])
                        name = writer.append(item.episode, masks=masks)
                        print(f"{name}: {item.path.name}: {item.episode.num_samples} steps, {item.human_steps} "
                              f"human, {item.skipped_hold} hold dropped, outcome {item.outcome}")
                validate_dataset(tmp, require_imgen=True)
        except OutputError as exc:
            raise CliError(str(exc)) from exc
    finally:
        env.close()
    print(f"wrote {out}: {len(episodes)} episodes, {sum(e.human_steps > 0 for e in episodes)} with interventions")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bag2hdf5", help="recorded episode bags (rosbag2) -> robomimic hdf5 with labels")
    p.add_argument("bags", nargs="+", type=path_arg, metavar="BAG", help="episode bag directories (or folders of them)")
    p.add_argument("--out", required=True, type=path_arg, help="robomimic hdf5 to write")
    p.add_argument("--task", default=None,
                   help="task of bags whose metadata names none (default: the bags' metadata, which it must match)")
    p.add_argument("--noise", default=None, help="env_args noise (default: from the bags' metadata)")
    p.add_argument("--observability", default=None, choices=("full", "partial", "none"))
    p.add_argument("--skip-bad", action="store_true",
                   help="skip bags that cannot be read or converted (named, with the reason) instead of failing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)
