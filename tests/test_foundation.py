"""The workspace is built and wired the way users and `ros2 launch` expect."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MSGS = REPO / "src" / "imgen_msgs"


def test_interface_package_and_python_package_import():
    import imgen_msgs.action
    import imgen_msgs.msg
    import imgen_msgs.srv
    import imgen_ros

    assert imgen_msgs.msg.DeltaPoseCommand().SOURCE_HUMAN == 1
    assert imgen_msgs.msg.ControlState.MODE_HOLD == 2
    assert hasattr(imgen_msgs.action.GenerateInterventions, "Feedback")
    assert imgen_msgs.srv.SetControlMode.Request().mode == 0
    assert Path(imgen_ros.__file__).resolve().is_relative_to(REPO / "src" / "imgen_ros")


def test_every_interface_field_is_documented():
    """Each field of every .msg/.srv/.action carries a comment: inline, or a comment block directly above
    the run of fields it introduces (up to the next blank line)."""
    undocumented = []
    for path in sorted(MSGS.glob("*/*.*")):
        if path.suffix not in (".msg", ".srv", ".action"):
            continue
        previous_comment = False
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if not stripped or stripped == "---":
                previous_comment = False
                continue
            if stripped.startswith("#"):
                previous_comment = True
                continue
            is_constant = re.match(r"^\w+\s+[A-Z0-9_]+\s*=", stripped)
            if not is_constant and "#" not in stripped and not previous_comment:
                undocumented.append(f"{path.name}: {stripped}")
    assert not undocumented, "undocumented fields:\n" + "\n".join(undocumented)


def test_launch_and_config_installed_where_ros2_launch_finds_them():
    share = REPO / "install" / "imgen_ros" / "share" / "imgen_ros"
    for folder, pattern in (("launch", "*.launch.py"), ("config", "*.yaml")):
        sources = sorted(p.name for p in (REPO / folder).glob(pattern))
        installed = sorted(p.name for p in (share / folder).glob(pattern))
        assert installed == sources, f"{folder}: installed {installed} != sources {sources}"
    index = REPO / "install" / "imgen_ros" / "share" / "ament_index" / "resource_index" / "packages" / "imgen_ros"
    assert index.exists()


def test_cli_lists_commands_and_rejects_unknown_ones():
    ok = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "version" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "no-such-command"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
