"""Files the package installs into ``share/imgen_ros`` (launch files, ``config/``), located at run time."""

from __future__ import annotations

from pathlib import Path

PACKAGE = "imgen_ros"
SOURCE_CONFIG = Path(__file__).resolve().parents[3] / "config"   # the repository's config/, uninstalled


def config_file(name: str, allow_source_tree: bool = False) -> str:
    """The installed ``config/<name>``. A missing file is an error here: launch_ros only warns about a
    missing parameter file and starts the node on its defaults. ``allow_source_tree``: fall back to
    the repository's copy when the package is not installed (tools run from a checkout)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory(PACKAGE)) / "config" / name
    except (ImportError, LookupError, ValueError):
        path = None
    if path is not None and path.is_file():
        return str(path)
    if allow_source_tree and (SOURCE_CONFIG / name).is_file():
        return str(SOURCE_CONFIG / name)
    raise FileNotFoundError(f"{path or name}: no such imgen_ros config file (rebuild the workspace: colcon build)")
