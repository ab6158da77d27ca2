"""Episode bags -> robomimic episodes: steps, labels from the control state, dropped HOLDs."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.core.action import action_to_target_pose
from imgen_ros.core.pose import make_pose
from imgen_ros.data.bag import RECORDED_TOPICS, EpisodeBagWriter
from imgen_ros.data.bag_episode import bag_to_episode, relative_topic
from imgen_ros.data.episode import ACTION_MODE_HUMAN, ACTION_MODE_ROBOT
from imgen_ros.nodes._ros import pose_to_msg
from rclpy.serialization import serialize_message

from imgen_msgs.msg import ControlState, DeltaPoseCommand, EpisodeEvent, ObjectPoseEstimate, RobotState

NS = "/fr3/"   # a robot namespace: names are matched by suffix
T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def write_bag(path, *, outcome=EpisodeEvent.EVENT_SUCCESS):
    bag = EpisodeBagWriter(path, {NS + t: ty for t, ty in RECORDED_TOPICS.items()},
                           {"imgen_task": "block_grasp", "imgen_episode_id": "3"})

    def put(topic, t, msg):
        bag.write(NS + topic, T0 + t * MS, serialize_message(msg))

    put(topics.EPISODE_EVENTS, 0, EpisodeEvent(episode_id=3, task="block_grasp", event=EpisodeEvent.EVENT_START))
    # (mode, command source) per 50 ms step: 3 policy, 1 hold, 3 human
    plan = [(0, 0)] * 3 + [(2, 3)] + [(1, 1)] * 3
    for k, (mode, source) in enumerate(plan):
        t = 10 + 50 * k
        state = RobotState(tcp_pose=pose_to_msg(make_pose([0.5, 0.0, 0.3 - 0.01 * k])),
                           gripper_qpos=[0.04, 0.04], joint_positions=[0.1 * k] * 7)
        put(topics.ROBOT_STATE, t, state)
        put(topics.OBJECT_POSE, t + 1, ObjectPoseEstimate(object_id="cube", valid=True,
                                                          pose=pose_to_msg(make_pose([0.55, 0.03, 0.025]))))
        put(topics.OBJECT_POSE_TRUE, t + 1, ObjectPoseEstimate(object_id="cube", valid=True,
                                                               pose=pose_to_msg(make_pose([0.55, 0.0, 0.025]))))
        put(topics.OBJECT_POSE, t + 2, ObjectPoseEstimate(object_id="cube", valid=False))  # bad fit: ignored
        put(topics.CONTROL_STATE, t + 3, ControlState(mode=mode, episode_id=3))
        cmd = DeltaPoseCommand(translation=[0.0, 0.0, -0.01 if mode != 2 else 0.0], rotation=[0.0, 0.0, 0.0],
                               gripper=1.0 if mode == 1 else -1.0, source=source, step=k)
        put(topics.ROBOT_COMMAND, t + 5, cmd)
    put(topics.EPISODE_EVENTS, 400, EpisodeEvent(episode_id=3, event=outcome, reason="lifted"))
    bag.close({"imgen_complete": "true", "imgen_outcome": "SUCCESS"})


def test_relative_topic_strips_namespaces():
    assert relative_topic("/fr3/robot/command") == topics.ROBOT_COMMAND
    assert relative_topic("/object_pose/true") == topics.OBJECT_POSE_TRUE
    assert relative_topic("/camera/camera/depth/image_rect_raw") == topics.DEPTH_IMAGE
    assert relative_topic("/unrelated") is None


def test_bag_becomes_a_labelled_episode(tmp_path):
    write_bag(tmp_path / "ep")
    out = bag_to_episode(tmp_path / "ep", ("cube",), "full")
    ep = out.episode
    assert out.task == "block_grasp" and out.outcome == "SUCCESS"
    assert ep.num_samples == 6 and out.skipped_hold == 1 and out.human_steps == 3
    assert list(ep.action_modes) == [ACTION_MODE_ROBOT] * 3 + [ACTION_MODE_HUMAN] * 3
    np.testing.assert_allclose(ep.actions[:, 2], -0.2)            # -1 cm / 5 cm full scale
    assert list(ep.actions[:, 6]) == [-1.0] * 3 + [1.0] * 3
    assert list(ep.rewards) == [0.0] * 5 + [1.0] and list(ep.dones) == [0] * 5 + [1]
    # observation of step k: the state received before command k (hold step 3 dropped)
    np.testing.assert_allclose(ep.obs["robot0_eef_pos"][:, 2], [0.30, 0.29, 0.28, 0.26, 0.25, 0.24])
    np.testing.assert_allclose(ep.next_obs["robot0_eef_pos"][:-1], ep.obs["robot0_eef_pos"][1:])
    np.testing.assert_allclose(ep.obs["object"][0, :3], [0.55, 0.03, 0.025])   # believed
    np.testing.assert_allclose(ep.datagen_info["object_poses/cube"][0][:3, 3], [0.55, 0.0, 0.025])  # true
    np.testing.assert_allclose(ep.datagen_info["observed_object_poses/cube"][0][:3, 3], [0.55, 0.03, 0.025])
    target = action_to_target_pose(ep.actions[0], ep.datagen_info["eef_pose"][0])
    np.testing.assert_allclose(ep.datagen_info["target_pose"][0], target)
    assert ep.states.shape == (6, 7 + 2 + 7)
    assert ep.attrs["episode_id"] == 3 and ep.attrs["complete"]


def test_a_starved_recorder_pairs_each_command_with_the_state_measured_before_it(tmp_path):
    """Commands and states are paired by their stamps: a burst the recorder received late keeps its order."""
    bag = EpisodeBagWriter(tmp_path / "ep", {NS + t: ty for t, ty in RECORDED_TOPICS.items()},
                           {"imgen_task": "block_grasp", "imgen_episode_id": "3"})

    def put(topic, received, stamped, msg):
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0 + stamped * MS, 1_000_000_000)
        bag.write(NS + topic, T0 + received * MS, serialize_message(msg))

    put(topics.EPISODE_EVENTS, 0, 0, EpisodeEvent(episode_id=3, task="block_grasp", event=EpisodeEvent.EVENT_START))
    for k in range(6):
        stamped = 10 + 50 * k
        received = stamped if k < 2 else 300 + k  # the recorder stalls after step 1, then gets the rest at once
        put(topics.ROBOT_STATE, received - 1 if k < 2 else received, stamped,
            RobotState(tcp_pose=pose_to_msg(make_pose([0.5, 0.0, 0.3 - 0.01 * k])), gripper_qpos=[0.04, 0.04],
                       joint_positions=[0.0] * 7))
        put(topics.OBJECT_POSE, received, stamped + 1,
            ObjectPoseEstimate(object_id="cube", valid=True, pose=pose_to_msg(make_pose([0.55, 0.0, 0.025]))))
        put(topics.CONTROL_STATE, received, stamped + 3, ControlState(mode=ControlState.MODE_POLICY, episode_id=3))
        put(topics.ROBOT_COMMAND, received + 10, stamped + 5,
            DeltaPoseCommand(translation=[0.0, 0.0, -0.01], rotation=[0.0, 0.0, 0.0], gripper=-1.0, source=0, step=k))
    put(topics.EPISODE_EVENTS, 320, 290, EpisodeEvent(episode_id=3, event=EpisodeEvent.EVENT_SUCCESS))
    bag.close({"imgen_complete": "true", "imgen_outcome": "SUCCESS"})
    ep = bag_to_episode(tmp_path / "ep", ("cube",), "full").episode
    np.testing.assert_allclose(ep.obs["robot0_eef_pos"][:, 2], [0.30, 0.29, 0.28, 0.27, 0.26, 0.25])
    np.testing.assert_allclose(ep.datagen_info["eef_pose"][:, 2, 3], [0.30, 0.29, 0.28, 0.27, 0.26, 0.25])


def test_a_bag_without_start_is_refused_by_name(tmp_path):
    bag = EpisodeBagWriter(tmp_path / "ep", {NS + topics.ROBOT_STATE: RECORDED_TOPICS[topics.ROBOT_STATE]})
    bag.write(NS + topics.ROBOT_STATE, T0, serialize_message(RobotState()))
    bag.close()
    with pytest.raises(ValueError, match="START"):
        bag_to_episode(tmp_path / "ep", ("cube",), "full")
