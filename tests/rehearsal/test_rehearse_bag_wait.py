"""imgen rehearse's wait for the recorder's last bags (ROS-free: bags stand in as metadata.yaml files)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import yaml
from imgen_ros.cli.rehearse import _wait_for_bags


def _bag(root: Path, name: str, complete: bool) -> Path:
    bag = root / name
    bag.mkdir(parents=True, exist_ok=True)
    info = {"rosbag2_bagfile_information": {"custom_data": {"imgen_complete": str(complete).lower()}}}
    (bag / "metadata.yaml").write_text(yaml.safe_dump(info))
    return bag


def test_a_recorder_that_is_still_writing_is_waited_for_past_the_idle_time_out(tmp_path: Path) -> None:
    """It writes a chunk every 0.3 s for 1.5 s, then closes the bag: longer than the 1 s idle time-out
    in total, never idle that long, so the wait sees the bag closed and notes nothing."""
    _bag(tmp_path, "episode_0001", True)
    late = _bag(tmp_path, "episode_0002", False)

    def recorder() -> None:
        for k in range(5):
            time.sleep(0.3)
            (late / f"episode_0002_{k}.mcap").write_bytes(b"x" * (k + 1))
        _bag(tmp_path, "episode_0002", True)

    writer = threading.Thread(target=recorder)
    writer.start()
    result = SimpleNamespace(notes=[])
    _wait_for_bags(tmp_path, 2, result, idle_timeout=1.0, cap=30.0)
    writer.join()
    assert result.notes == []


def test_a_recorder_that_writes_nothing_is_given_up_on_with_a_note(tmp_path: Path) -> None:
    _bag(tmp_path, "episode_0001", True)
    _bag(tmp_path, "episode_0002", False)
    result = SimpleNamespace(notes=[])
    _wait_for_bags(tmp_path, 2, result, idle_timeout=0.5, cap=600.0)   # returns on idleness, not the cap
    (note,) = result.notes
    assert note.startswith("1 of 2 bags closed complete") and "wrote nothing" in note
