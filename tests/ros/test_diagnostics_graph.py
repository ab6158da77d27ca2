"""/diagnostics over DDS: every node of the graph reports its aspects about once a second, named
"<node fqn>: <aspect>", and the levels change under injected faults: a frozen pose stream turns the
arbiter's mode ERROR (HOLD stale_pose) and the policy's inputs ERROR (pose estimate too old), and
back; a stale command turns the driver's commands WARN. The simulated human is off here (a person
who sees the robot stop takes over, and would race the injected faults); its report is checked in
test_sim_graph's takeover test."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from imgen_ros.core import topics
from imgen_ros.core.command import DeltaCommand
from imgen_ros.nodes._ros import DIAGNOSTICS_TOPIC, command_to_msg, now_s, qos
from rclpy.node import Node

from imgen_msgs.msg import ControlState, DeltaPoseCommand
from imgen_msgs.srv import StartEpisode

sys.path.insert(0, str(Path(__file__).parent))
from graph import node_cmd, start_graph
from probe import Probe
from test_graph_faults import set_sim_parameter

OK, WARN, ERROR = (int.from_bytes(v, "little") for v in (DiagnosticStatus.OK, DiagnosticStatus.WARN,
                                                         DiagnosticStatus.ERROR))
AUX = "/aux"   # nodes that would compete with the sim graph's topics run in a namespace of their own

EXPECTED = {   # node fqn -> (hardware_id, aspects)
    "/sim_node": ("sim", {"world"}),
    "/intervention_arbiter": ("fr3", {"mode", "safety clips"}),
    "/policy_node": ("fr3", {"loop", "inputs"}),
    "/recorder": ("none", {"recording"}),
    f"{AUX}/robot_driver": ("sim", {"connection", "commands"}),
    f"{AUX}/cube_pose_estimator": ("d415", {"fit"}),
    f"{AUX}/contact_detector": ("fr3", {"contact"}),
    f"{AUX}/joy_teleop": ("joy", {"device"}),
    f"{AUX}/keyboard_teleop": ("keyboard", {"device"}),
    f"{AUX}/generation_server": ("none", {"generation"}),
}


@dataclass
class Seen:
    t: float
    level: int
    message: str
    hardware_id: str
    values: dict[str, str]


class DiagnosticsListener(Node):
    """Every status received on /diagnostics, by name, with its arrival time."""

    def __init__(self, context) -> None:
        super().__init__("diagnostics_listener", context=context)
        self.lock = threading.Lock()
        self.seen: dict[str, list[Seen]] = {}
        self.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_array, 50)

    def _on_array(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        with self.lock:
            for s in msg.status:
                self.seen.setdefault(s.name, []).append(Seen(now, int.from_bytes(s.level, "little"), s.message,
                                                             s.hardware_id, {kv.key: kv.value for kv in s.values}))

    def history(self, name: str, since: float = 0.0) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen.get(name, []) if s.t >= since]

    def latest(self, name: str) -> Seen | None:
        found = self.history(name)
        return found[-1] if found else None

    def nodes(self) -> dict[str, set[str]]:
        with self.lock:
            out: dict[str, set[str]] = {}
            for name in self.seen:
                node, aspect = name.split(": ", 1)
                out.setdefault(node, set()).add(aspect)
            return out

    def any_since(self, name: str, since: float, predicate) -> bool:
        return any(predicate(s) for s in self.history(name, since))


def aux_cmd(module: str, params_file: str | None, **params: object) -> list[str]:
    return [*node_cmd(module, params_file, **params), "-r", f"__ns:={AUX}"]


def test_every_node_reports_and_levels_follow_injected_faults(ros_context, ros_spin, node_process, wait_until,
                                                              tmp_path):
    listener, probe = DiagnosticsListener(ros_context), Probe(ros_context)
    stale_pub = probe.create_publisher(DeltaPoseCommand, f"{AUX}/{topics.ROBOT_COMMAND}", qos(topics.ROBOT_COMMAND))
    ros_spin(listener, probe)
    aux = {
        "driver": aux_cmd("robot_driver", "robot_driver.yaml", driver="sim"),
        "estimator": aux_cmd("cube_pose_estimator", "cube_pose_estimator.yaml"),
        "contact": aux_cmd("contact_detector", "contact_detector.yaml"),
        "joy": aux_cmd("joy_teleop", "joy_teleop.yaml"),
        "keyboard": aux_cmd("keyboard_teleop", "keyboard_teleop.yaml"),
        "generation": aux_cmd("generation_server", None),
    }
    procs = start_graph(node_process, wait_until, probe, sim={"noise": "off", "end_episodes": False,
                                                            "simulated_human": False},
                        policy={"checkpoint": "expert"}, recorder_dir=tmp_path / "bags", extra=aux,
                        arbiter={"require_teleop_heartbeat": False})  # no teleop drives here

    # every node, every aspect, with its hardware id
    def all_reported() -> bool:
        dead = [n for n, p in procs.items() if not p.alive()]
        assert not dead, {n: procs[n].errors()[-2000:] for n in dead}
        nodes = listener.nodes()
        return all(aspects <= nodes.get(fqn, set()) for fqn, (_, aspects) in EXPECTED.items())

    wait_until(all_reported, 60, f"statuses from every node (seen: {listener.nodes()})")
    for fqn, (hardware_id, aspects) in EXPECTED.items():
        for aspect in aspects:
            status = listener.latest(f"{fqn}: {aspect}")
            assert status.hardware_id == hardware_id and status.message, (fqn, aspect, status)
    # about 1 Hz, not faster
    t0 = time.monotonic()
    time.sleep(3.0)
    assert 1 <= len(listener.history("/intervention_arbiter: mode", t0)) <= 4
    # devices that report nothing say so
    assert listener.latest(f"{AUX}/cube_pose_estimator: fit").level == WARN
    assert "no depth frame" in listener.latest(f"{AUX}/cube_pose_estimator: fit").message
    assert listener.latest(f"{AUX}/joy_teleop: device").level == WARN
    assert listener.latest(f"{AUX}/keyboard_teleop: device").values["state"] == "dead"
    assert listener.latest(f"{AUX}/generation_server: generation").level == OK

    # the driver: OK, then a command stamped 5 s ago is dropped and counted -> WARN
    driver = f"{AUX}/robot_driver: commands"
    assert listener.latest(driver).level == OK and listener.latest(driver).values["dropped_stale"] == "0"
    t0 = time.monotonic()
    stale_pub.publish(command_to_msg(DeltaCommand.hold(-1.0, stamp=now_s(probe) - 5.0)))
    wait_until(lambda: listener.any_since(driver, t0, lambda s: s.level == WARN and s.values["dropped_stale"] == "1"),
               10, "the driver's dropped stale command as WARN")

    # an episode: the arbiter reports POLICY as OK, the policy's inputs are not in ERROR
    assert probe.call(topics.SIM_RESET, StartEpisode.Request(seed=3)).success
    probe.start_episode()
    wait_until(lambda: probe.last(topics.CONTROL_STATE).mode == ControlState.MODE_POLICY, 10, "POLICY mode")
    t0 = time.monotonic()
    mode, inputs = "/intervention_arbiter: mode", "/policy_node: inputs"
    wait_until(lambda: listener.any_since(mode, t0, lambda s: s.level == OK and s.values["mode"] == "POLICY"), 10,
               "arbiter POLICY reported OK")
    wait_until(lambda: listener.any_since(inputs, t0, lambda s: s.values["episode_active"] == "True"), 10,
               "policy inputs during the episode")
    assert listener.latest(inputs).level < ERROR, listener.latest(inputs)

    def since(name: str, t: float) -> str:
        return "\n".join(f"{s.t - t:+.2f} s level {s.level}: {s.message}" for s in listener.history(name, t))

    # a stale pose: the arbiter HOLDs (ERROR) and the policy's pose estimate ages past its limit (ERROR)
    t_fault = time.monotonic()
    set_sim_parameter(probe, "fault.freeze_pose", True)
    wait_until(lambda: listener.any_since(mode, t_fault, lambda s: s.level == ERROR and s.values["reason"] ==
                                          "stale_pose"), 10, "arbiter ERROR stale_pose",
               details=lambda: since(mode, t_fault))
    wait_until(lambda: listener.any_since(inputs, t_fault, lambda s: s.level == ERROR), 10, "policy inputs ERROR",
               details=lambda: since(inputs, t_fault))
    assert "pose estimate" in listener.latest(inputs).message
    assert listener.any_since("/sim_node: world", t_fault, lambda s: s.level == WARN and "freeze_pose" in s.message)

    # the fault cleared: back to OK (the sim arbiter does not latch faults)
    t_clear = time.monotonic()
    set_sim_parameter(probe, "fault.freeze_pose", False)
    wait_until(lambda: listener.any_since(mode, t_clear, lambda s: s.level == OK and s.values["mode"] == "POLICY"),
               10, "arbiter back to POLICY, OK", details=lambda: since(mode, t_fault) + "\n" + since(inputs, t_fault))
    recording = "/recorder: recording"  # the episode's bag, with its first chunks on disk
    wait_until(lambda: listener.any_since(recording, t0, lambda s: s.values["bag"].startswith("episode_")
                                          and int(s.values["bytes"]) > 0), 10, "the recorder's episode bag",
               details=lambda: "\n".join(f"{s.message} {s.values}" for s in listener.history(recording, t0)))
    for name in sorted(listener.seen):
        status = listener.latest(name)
        print(f"{name} [{status.hardware_id}] level {status.level}: {status.message}")
