"""ament_python package imgen_ros; installs top-level launch/ and config/ into share/imgen_ros."""

import os
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "imgen_ros"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _rel(pattern: str) -> list[str]:
    """Files under the repository root matching `pattern`, relative to this setup.py."""
    return sorted(os.path.relpath(p, HERE) for p in glob(str(REPO / pattern)) if os.path.isfile(p))


NODES = sorted(p.stem for p in (HERE / PACKAGE / "nodes").glob("*.py") if not p.stem.startswith("_"))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "tests"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _rel("launch/*.launch.py")),
        # parameter files, calibration, controller and DDS profiles, viewer configs
        (f"share/{PACKAGE}/config", _rel("config/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="imgen developers",
    maintainer_email="imgen@example.com",
    description="Interventional MimicGen for the Franka FR3 (ROS 2).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "imgen = imgen_ros.cli.main:main",
            *[f"{n} = imgen_ros.nodes.{n}:main" for n in NODES],
        ],
    },
)
