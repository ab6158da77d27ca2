"""``imgen bag2hdf5`` on unreadable bags: real truncated/corrupt MCAP files, empty and foreign folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from imgen_ros.cli.main import main
from imgen_ros.core import topics
from imgen_ros.core.pose import make_pose
from imgen_ros.data import DatasetReader
from imgen_ros.data.bag import RECORDED_TOPICS, BagError, EpisodeBagWriter, read_bag
from imgen_ros.nodes._ros import pose_to_msg
from rclpy.serialization import serialize_message

from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent, ObjectPoseEstimate, RobotState

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def write_bag(path: Path) -> Path:
    """A short recorded block_grasp episode: 3 policy steps, 3 human steps, SUCCESS."""
    bag = EpisodeBagWriter(path, {"/" + t: ty for t, ty in RECORDED_TOPICS.items()}, {"imgen_task": "block_grasp"})

    def put(topic: str, t: int, msg: object) -> None:
        bag.write("/" + topic, T0 + t * MS, serialize_message(msg))

    put(topics.EPISODE_EVENTS, 0, EpisodeEvent(episode_id=1, task="block_grasp", event=EpisodeEvent.EVENT_START))
    for k, mode in enumerate([0, 0, 0, 1, 1, 1]):
        t = 10 + 50 * k
        put(topics.ROBOT_STATE, t, RobotState(tcp_pose=pose_to_msg(make_pose([0.5, 0.0, 0.3 - 0.01 * k])),
                                              gripper_qpos=[0.04, 0.04], joint_positions=[0.0] * 7))
        put(topics.OBJECT_POSE, t + 1, ObjectPoseEstimate(object_id="cube", valid=True,
                                                          pose=pose_to_msg(make_pose([0.55, 0.0, 0.025]))))
        put(topics.CONTROL_STATE, t + 2, ControlState(mode=mode, episode_id=1))
        put(topics.ROBOT_COMMAND, t + 3, DeltaPoseCommand(translation=[0.0, 0.0, -0.01], rotation=[0.0, 0.0, 0.0],
                                                          gripper=-1.0, source=mode, step=k))
    put(topics.EPISODE_EVENTS, 400, EpisodeEvent(episode_id=1, event=EpisodeEvent.EVENT_SUCCESS))
    bag.close({"imgen_complete": "true", "imgen_outcome": "SUCCESS"})
    return path


def mcap_of(bag: Path) -> Path:
    (f,) = bag.glob("*.mcap")
    return f


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two good bags and one of every kind of unreadable one."""
    root = tmp_path / "bags"
    write_bag(root / "ep_1_good")
    write_bag(root / "ep_2_good")
    truncated = mcap_of(write_bag(root / "ep_3_truncated"))
    os.truncate(truncated, truncated.stat().st_size // 2)
    mcap_of(write_bag(root / "ep_4_corrupt")).write_bytes(b"this is not an MCAP file" * 10)
    (root / "ep_5_empty").mkdir()
    (root / "ep_6_notabag").mkdir()
    (root / "ep_6_notabag" / "notes.txt").write_text("hello")
    (write_bag(root / "ep_7_badmeta") / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    return root


def test_read_bag_names_the_bag_and_file_of_a_truncated_mcap(tmp_path):
    bag = write_bag(tmp_path / "ep")
    assert len(read_bag(bag)[f"/{topics.ROBOT_COMMAND}"]) == 6
    mcap = mcap_of(bag)
    os.truncate(mcap, mcap.stat().st_size - 10)
    with pytest.raises(BagError, match=rf"bag {bag}: file {mcap.name} is truncated"):
        read_bag(bag)


def test_skip_bad_skips_every_unreadable_bag_and_names_it(folder, tmp_path, capsys):
    out = tmp_path / "int.hdf5"
    assert main(["bag2hdf5", str(folder), "--out", str(out), "--skip-bad"]) == 0
    printed = capsys.readouterr().out
    skipped = {line.split(":")[0].removeprefix("skipped "): line for line in printed.splitlines()
               if line.startswith("skipped ")}
    expected = {"ep_3_truncated": "file ep_3_truncated_0.mcap is truncated",
                "ep_4_corrupt": "file ep_4_corrupt_0.mcap is not an MCAP file",
                "ep_5_empty": "no metadata.yaml (empty directory",
                "ep_6_notabag": "no metadata.yaml (not a rosbag2 directory",
                "ep_7_badmeta": "file metadata.yaml is unreadable"}
    assert set(skipped) == {str(folder / name) for name in expected}
    for name, reason in expected.items():
        assert reason in skipped[str(folder / name)]
    with DatasetReader(out) as r:
        assert len(r.demos()) == 2 and len(r.demos("interventions")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bags", "int.hdf5"]


def test_without_skip_bad_one_line_names_the_bag_and_file(folder, tmp_path, capsys):
    out = tmp_path / "int.hdf5"
    assert main(["bag2hdf5", str(folder / "ep_1_good"), str(folder / "ep_3_truncated"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"imgen: error: bag {folder / 'ep_3_truncated'}: file ep_3_truncated_0.mcap is truncated")
    assert not out.exists() and not list(tmp_path.glob(".int.hdf5.*"))
    assert main(["bag2hdf5", str(folder / "ep_5_empty"), "--out", str(out), "--skip-bad"]) == 2
    assert "no readable episode bag" in capsys.readouterr().err
    assert main(["bag2hdf5", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert f"bag {tmp_path / 'missing'}: no such directory" in capsys.readouterr().err


def test_the_output_is_never_one_of_the_bag_files(tmp_path, capsys):
    bag = write_bag(tmp_path / "ep")
    mcap = mcap_of(bag)
    before = mcap.read_bytes()
    assert main(["bag2hdf5", str(bag), "--out", str(mcap), "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert mcap.read_bytes() == before


def test_a_bag_that_names_no_task_is_named_and_task_suggested(tmp_path, capsys):
    """A foreign folder with a metadata.yaml that carries no imgen_task (not written by imgen's recorder)."""
    bag = tmp_path / "foreign"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: 9\n")
    (bag / "foreign_0.db3").write_bytes(b"garbage")
    out = tmp_path / "x.hdf5"
    assert main(["bag2hdf5", str(bag), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"bag {bag} names no task" in err and "--task" in err
    # told the task, the unreadable bag itself is the error
    assert main(["bag2hdf5", str(bag), "--out", str(out), "--task", "block_grasp"]) == 2
    assert f"bag {bag}" in capsys.readouterr().err and not out.exists()


def test_an_episode_is_never_converted_twice(tmp_path, capsys):
    """The same bag named twice (directly or through a link), or a storage file copied into a bag and listed
    beside the original: its samples would weigh double in training."""
    bag = write_bag(tmp_path / "ep_1")
    (tmp_path / "alias").symlink_to(bag)
    out = tmp_path / "out.hdf5"
    for twice in ([bag, bag], [bag, tmp_path / "alias"]):
        assert main(["bag2hdf5", *map(str, twice), "--out", str(out)]) == 2
        assert "is named twice" in capsys.readouterr().err
    copied = write_bag(tmp_path / "ep_2")
    original = mcap_of(copied)
    (copied / ("copy_" + original.name)).write_bytes(original.read_bytes())
    meta = copied / "metadata.yaml"
    meta.write_text(meta.read_text().replace(f"relative_file_paths:\n  - {original.name}",
                                             f"relative_file_paths:\n  - {original.name}\n  - copy_{original.name}"))
    assert main(["bag2hdf5", str(copied), "--out", str(out)]) == 2
    assert f"copy_{original.name} is a copy of {original.name}" in capsys.readouterr().err
    assert not out.exists()
    assert main(["bag2hdf5", str(bag), "--out", str(out)]) == 0  # once is fine


def test_task_never_relabels_a_bag_recorded_on_another_task(tmp_path, capsys):
    bag = write_bag(tmp_path / "ep_1")  # recorded on block_grasp
    out = tmp_path / "out.hdf5"
    assert main(["bag2hdf5", str(bag), "--out", str(out), "--task", "nut_insertion"]) == 2
    assert f"bag {bag} was recorded on task 'block_grasp', not --task 'nut_insertion'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["bag2hdf5", str(bag), "--out", str(out), "--task", "block_grasp"]) == 0
