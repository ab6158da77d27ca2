"""``imgen version``: versions of imgen and the stack it runs on."""

from __future__ import annotations

import argparse
import json
from importlib import metadata


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    versions = {d: _version(d) for d in ("imgen_ros", "mujoco", "torch", "robomimic", "open3d-cpu", "ros-rclpy",
                                         "rosbags", "numpy")}
    print(json.dumps(versions, indent=None if args.json else 2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("version", help="print versions of imgen and its stack")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    parser.set_defaults(func=run)
