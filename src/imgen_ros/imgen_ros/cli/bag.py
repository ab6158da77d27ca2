"""``imgen bag``: look at recorded episode bags (rosbag2 MCAP from the recorder node).

- ``imgen bag info BAG... [--json]``: per episode the task, outcome, takeovers (human segments),
  duration, steps, the corruption (policy/pose_error's mode, seed and offset; believed - true
  measured in the bag) and the reveal, then every topic with its message count and offered QoS
  (imgen_ros.data.bag_info).
- ``imgen bag plot BAG... --out PNG``: a top-down panel per episode (imgen_ros.data.bag_plot).

Each BAG is an episode bag directory or a folder of them. A missing, empty or corrupt bag (no
metadata, a truncated MCAP, no START event) is refused with one line naming it (exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imgen_ros.cli._args import bounded_float, bounded_int, path_arg
from imgen_ros.cli.bag2hdf5 import expand_bags
from imgen_ros.cli.main import CliError

COLUMNS = bounded_int(1, 8)
PANEL_IN = bounded_float(2.0, 20.0)
DPI = bounded_int(50, 400)
CUBE_M = bounded_float(0.005, 0.5)


def _timelines(paths: list[str]):
    from imgen_ros.data.bag import BagError
    from imgen_ros.data.bag_info import load_timeline

    out = []
    for bag in expand_bags(paths):
        try:
            out.append(load_timeline(bag))
        except BagError as exc:
            raise CliError(str(exc)) from exc
    return out


def run_info(args: argparse.Namespace) -> int:
    from imgen_ros.data.bag import BagError
    from imgen_ros.data.bag_info import format_bag_summary, summarize_bag

    summaries = []
    for bag in expand_bags(args.bags):
        try:
            summaries.append(summarize_bag(bag))
        except BagError as exc:
            raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else summaries))
    else:
        print("\n\n".join(format_bag_summary(s) for s in summaries))
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from imgen_ros.data.bag_plot import PlotConfig, plot_episodes
    from imgen_ros.data.outputs import OutputError, atomic_file

    if Path(args.out).suffix.lower() != ".png":
        raise CliError(f"--out {args.out}: the picture is a PNG, name it *.png")
    timelines = _timelines(args.bags)
    config = PlotConfig(cube_size_m=args.cube_size, columns=args.columns, panel_in=args.panel_size, dpi=args.dpi)
    inputs = [f for tl in timelines for f in tl.path.iterdir() if f.is_file()]
    try:
        with atomic_file(args.out, overwrite=args.overwrite, inputs=inputs) as tmp:
            plot_episodes(timelines, tmp, config)
    except OutputError as exc:
        raise CliError(str(exc)) from exc
    print(f"wrote {args.out}: {len(timelines)} episode{'s' if len(timelines) != 1 else ''} "
          f"({', '.join(f'{tl.episode_id} {tl.outcome}' for tl in timelines)})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bag", help="summarize and plot recorded episode bags (rosbag2)")
    sub = parser.add_subparsers(dest="bag_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="task, outcome, takeovers, duration, corruption, topics and QoS")
    info.add_argument("bags", nargs="+", type=path_arg,
                      metavar="BAG", help="episode bag directories (or folders of them)")
    info.add_argument("--json", action="store_true", help="one JSON object (a list for several bags)")
    info.set_defaults(func=run_info)
    plot = sub.add_parser("plot", help="top-down picture per episode: TCP path by control mode, cubes, reveal")
    plot.add_argument("bags", nargs="+", type=path_arg,
                      metavar="BAG", help="episode bag directories (or folders of them)")
    plot.add_argument("--out", required=True, type=path_arg,
                      help="PNG to write (written beside it, renamed into place)")
    plot.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    plot.add_argument("--columns", type=COLUMNS, default=2, help=COLUMNS.doc("panels per row (default 2)"))
    plot.add_argument("--panel-size", type=PANEL_IN, default=5.0, help=PANEL_IN.doc("panel size in inches (default 5)"))
    plot.add_argument("--dpi", type=DPI, default=110, help=DPI.doc("resolution (default 110)"))
    plot.add_argument("--cube-size", type=CUBE_M, default=0.05, help=CUBE_M.doc("drawn cube edge [m] (default 0.05)"))
    plot.set_defaults(func=run_plot)
