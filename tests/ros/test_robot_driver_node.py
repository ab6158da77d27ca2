"""robot_driver over DDS: DeltaPoseCommands on robot/command move the simulated FR3 (franky-sim via the
libfranka driver) and robot_state reports it; the sim driver variant; a NaN command is refused."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand, Source
from imgen_ros.nodes._ros import command_to_msg, pose_from_msg, qos
from rclpy.node import Node
from rclpy.parameter import Parameter

from imgen_msgs.msg import DeltaPoseCommand, RobotState

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "robot"))
from franky_sim_server import running_franky_sim


class Commander(Node):
    def __init__(self, context) -> None:
        super().__init__("test_commander", context=context)
        self.pub = self.create_publisher(DeltaPoseCommand, topics.ROBOT_COMMAND, qos(topics.ROBOT_COMMAND))
        self.states: list[RobotState] = []
        self.create_subscription(RobotState, topics.ROBOT_STATE, self.states.append, qos(topics.ROBOT_STATE))

    def send(self, translation, gripper: float = -1.0, step: int = 0, age_s: float = 0.0) -> None:
        cmd = DeltaCommand(np.asarray(translation, float), np.zeros(3), gripper, Source.POLICY, time.time() - age_s,
                           step)
        self.pub.publish(command_to_msg(cmd))

    def tcp(self) -> np.ndarray:
        return pose_from_msg(self.states[-1].tcp_pose)[:3, 3]


def _driver_node(ros_context, driver: str, **params: object):
    from imgen_ros.nodes.robot_driver import RobotDriverNode

    overrides = [Parameter("driver", value=driver)] + [Parameter(k, value=v) for k, v in params.items()]
    return RobotDriverNode(context=ros_context, parameter_overrides=overrides)


def _wait_still(commander: Commander, wait_until, seconds: float = 0.3) -> np.ndarray:
    """Wait until the reported TCP stops moving; returns it."""
    def still() -> bool:
        recent = [pose_from_msg(s.tcp_pose)[:3, 3] for s in commander.states[-30:]]
        return len(recent) >= 30 and np.ptp(np.asarray(recent), axis=0).max() < 2e-4
    wait_until(still, 60, "the TCP to come to rest")  # generous: franky-sim slows down on a loaded machine
    return commander.tcp()


def test_libfranka_driver_node_moves_franky_sim(ros_context, ros_spin, wait_until, tmp_path):
    with running_franky_sim(tmp_path / "franky-sim.log") as address:
        node = _driver_node(ros_context, "libfranka", **{"libfranka.robot_ip": address,
                                                         "libfranka.enforce_realtime": False,
                                                         "libfranka.connect_timeout_s": 60.0,
                                                         "libfranka.relative_dynamics_factor": 0.2,
                                                         "command_timeout_s": 5.0})
        commander = Commander(ros_context)
        ros_spin(node, commander)
        wait_until(lambda: len(commander.states) > 10 and commander.pub.get_subscription_count() > 0, 20,
                   "robot_state and the command subscription")
        start = _wait_still(commander, wait_until)
        for delta in ([0.03, 0.0, 0.0], [0.0, 0.03, -0.02]):
            before = commander.tcp()
            commander.send(delta)
            wait_until(lambda b=before: np.linalg.norm(commander.tcp() - b) > 0.01, 30,
                       f"the TCP to move (executed {node.executed}, last error '{node.driver.last_motion_error}')")
            after = _wait_still(commander, wait_until)
            assert np.linalg.norm((after - before) - np.asarray(delta)) < 0.005, (after - before, delta)
        executed = node.executed
        commander.send([np.nan, 0.0, 0.0])
        time.sleep(0.5)
        assert node.executed == executed  # refused
        assert np.linalg.norm(commander.tcp() - start - np.array([0.03, 0.03, -0.02])) < 0.005
        node.close()


def test_sim_driver_node_steps_the_world_per_command(ros_context, ros_spin, wait_until):
    node = _driver_node(ros_context, "sim", **{"command_timeout_s": 5.0})
    commander = Commander(ros_context)
    ros_spin(node, commander)
    # both ends must have matched: a writer can see the reader before the reader has matched the writer
    wait_until(lambda: len(commander.states) > 3 and commander.pub.get_subscription_count() > 0
               and node.count_publishers(topics.ROBOT_COMMAND) > 0, 20, "discovery")
    start = commander.tcp()
    for step in range(10):
        commander.send([0.0, 0.0, 0.01], step=step)
        wait_until(lambda s=step: node.executed == s + 1, 10, f"command {step} executed")
    assert node.executed == 10
    # the state stream lags the last command on a loaded machine: wait for it to settle (bounded)
    previous = commander.tcp()
    for _ in range(40):
        time.sleep(0.1)
        current = commander.tcp()
        if np.linalg.norm(current - previous) < 1e-4:
            break
        previous = current
    moved = commander.tcp() - start
    assert 0.06 < moved[2] < 0.105 and np.linalg.norm(moved[:2]) < 0.01, moved


def test_stale_commands_are_dropped_and_counted(ros_context, ros_spin, wait_until):
    node = _driver_node(ros_context, "sim", **{"command_timeout_s": 5.0, "max_command_age_s": 0.1})
    commander = Commander(ros_context)
    ros_spin(node, commander)
    wait_until(lambda: len(commander.states) > 3 and commander.pub.get_subscription_count() > 0
               and node.count_publishers(topics.ROBOT_COMMAND) > 0, 20, "discovery")
    commander.send([0.0, 0.0, 0.01], step=0, age_s=0.5)     # queued half a second ago
    commander.send([0.0, 0.0, 0.01], step=1, age_s=-0.5)    # from a clock half a second ahead
    wait_until(lambda: node.dropped_stale == 2, 10, "both stale commands dropped")
    assert node.executed == 0
    commander.send([0.0, 0.0, 0.01], step=2)
    wait_until(lambda: node.executed == 1, 10, "the fresh command executed")
    assert node.dropped_stale == 2


def test_an_unreachable_robot_is_one_fatal_line_and_exit_1(node_process, wait_until):
    """FCI off or a wrong robot_ip: the driver refuses in one line a lab engineer can act on (exit 1,
    which ends the real launch with status 1), not a traceback."""
    sys.path.insert(0, str(Path(__file__).parent))
    from graph import node_cmd

    proc = node_process(node_cmd("robot_driver", None, **{"driver": "libfranka", "libfranka.robot_ip": "127.0.0.1",
                                                           "libfranka.enforce_realtime": False,
                                                           "libfranka.connect_timeout_s": 1.0}), name="unreachable")
    wait_until(lambda: not proc.alive(), 60, "robot_driver to give up")
    log = proc.output() + proc.errors()
    assert proc.popen.returncode == 1, log
    fatal = [ln for ln in log.splitlines() if "[FATAL]" in ln]
    assert len(fatal) == 1, log
    assert "[robot_driver]: refusing to start: cannot connect to the FR3 at 127.0.0.1" in fatal[0], log
    assert "Traceback" not in log
