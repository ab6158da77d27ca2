"""Bags stay readable when a message gains a field: read_bag decodes imgen_msgs with the definitions
stored in the bag (an episode recorded before RobotState carried the external wrench)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from imgen_ros.core import topics
from imgen_ros.data.bag import _imgen_msgs_dir, read_bag, typestore
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore


def _old_store():
    """The installed types, but RobotState as it was before ``external_wrench``."""
    text = (_imgen_msgs_dir() / "RobotState.msg").read_text()
    old = re.sub(r"^float64\[6\] external_wrench.*$", "", text, flags=re.M)
    assert old != text
    store = get_typestore(Stores.ROS2_KILTED)
    installed = typestore()
    store.register({n: installed.fielddefs[n] for n in installed.fielddefs
                    if n.startswith("imgen_msgs/") and n != "imgen_msgs/msg/RobotState"})
    store.register(get_types_from_msg(old, "imgen_msgs/msg/RobotState"))
    return store


def test_a_bag_with_an_older_robot_state_definition_still_decodes(tmp_path: Path):
    store = _old_store()
    cls = store.types["imgen_msgs/msg/RobotState"]
    fields = store.fielddefs["imgen_msgs/msg/RobotState"][1]
    assert "external_wrench" not in [f[0] for f in fields]
    Time, Header = store.types["builtin_interfaces/msg/Time"], store.types["std_msgs/msg/Header"]
    Pose, Point = store.types["geometry_msgs/msg/Pose"], store.types["geometry_msgs/msg/Point"]
    Quaternion = store.types["geometry_msgs/msg/Quaternion"]
    msg = cls(header=Header(stamp=Time(sec=5, nanosec=0), frame_id="fr3_link0"),
              joint_positions=np.arange(7.0), joint_velocities=np.zeros(7),
              tcp_pose=Pose(position=Point(x=0.5, y=0.0, z=0.3), orientation=Quaternion(x=1.0, y=0.0, z=0.0, w=0.0)),
              gripper_qpos=np.array([0.02, 0.02]), gripper_width=0.04)
    bag = tmp_path / "old_episode"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topics.ROBOT_STATE, "imgen_msgs/msg/RobotState", typestore=store)
        writer.write(conn, 5_000_000_000, store.serialize_cdr(msg, "imgen_msgs/msg/RobotState"))
    [(stamp, got)] = read_bag(bag)[topics.ROBOT_STATE]
    assert stamp == 5_000_000_000 and got.gripper_width == 0.04 and got.tcp_pose.position.x == 0.5
    assert list(got.joint_positions) == list(range(7))
