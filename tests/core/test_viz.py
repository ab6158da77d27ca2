"""core.viz: what RViz / Foxglove are shown. Joint names as franka_description names them, fingers at
half the width, the believed pose with the episode's pose error, one fixed marker set whose slots
ADD or DELETE, colours per control mode and command source, the command arrow from the TCP, the
safety box from the arbiter's own parameter file."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from imgen_ros.core import topics
from imgen_ros.core.arbiter import ArbiterConfig, Event, Mode
from imgen_ros.core.command import Source
from imgen_ros.core.params import ConfigError, load_config
from imgen_ros.core.topics import BASE_FRAME
from imgen_ros.core.viz import (
    COMMAND_SHOWN_S,
    MARKER_SLOTS,
    MarkerAction,
    MarkerType,
    PoseErrorInfo,
    RateLimiter,
    VizConfig,
    VizScene,
    arbiter_workspace,
    believed_position,
    box_edges,
    cube_edges,
    joint_state,
    mode_color,
    rgba,
)

REPO = Path(__file__).resolve().parents[2]
Q = np.array([0.0, 0.0, math.sin(math.radians(10)), math.cos(math.radians(10))])   # 20 deg yaw


def _by_key(markers):
    return {(m.ns, m.id): m for m in markers}


# ---------------------------------------------------------------- joint states
def test_joint_names_are_franka_descriptions():
    """robots/fr3 + end_effectors/franka_hand (arm_id fr3, no arm_prefix): fr3_joint1..7, fr3_finger_joint1/2."""
    js = joint_state(np.arange(7) * 0.1, np.ones(7), 0.06)
    assert js.names == ("fr3_joint1", "fr3_joint2", "fr3_joint3", "fr3_joint4", "fr3_joint5", "fr3_joint6",
                        "fr3_joint7", "fr3_finger_joint1", "fr3_finger_joint2")
    assert js.position == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.03, 0.03])
    assert js.velocity[:7] == pytest.approx([1.0] * 7) and all(math.isnan(v) for v in js.velocity[7:])


def test_fingers_clip_to_their_travel_and_unknown_width_leaves_them_out():
    assert joint_state(np.zeros(7), np.zeros(7), 0.095).position[7:] == (0.04, 0.04)
    assert joint_state(np.zeros(7), np.zeros(7), -0.001).position[7:] == (0.0, 0.0)
    nan_width = joint_state(np.zeros(7), np.zeros(7), float("nan"))
    assert len(nan_width.names) == len(nan_width.position) == len(nan_width.velocity) == 7
    bad = np.zeros(7)
    bad[3] = np.inf
    assert joint_state(bad, np.zeros(7), 0.04) is None


# ---------------------------------------------------------------- poses
def test_believed_is_the_estimate_plus_the_running_episodes_offset():
    error = PoseErrorInfo(4, "task", 12, {"cube": np.array([0.01, -0.03, 0.0])})
    assert believed_position([0.5, 0.0, 0.025], "cube", error, 4) == pytest.approx([0.51, -0.03, 0.025])
    assert believed_position([0.5, 0.0, 0.025], "cube", error, 5) == pytest.approx([0.5, 0.0, 0.025])
    assert believed_position([0.5, 0.0, 0.025], "lid", error, 4) == pytest.approx([0.5, 0.0, 0.025])
    assert believed_position([0.5, 0.0, 0.025], "cube", None, 4) == pytest.approx([0.5, 0.0, 0.025])


def test_scene_mirrors_tcp_believed_and_true_in_the_base_frame():
    scene = VizScene()
    tcp = scene.on_robot_state([0.4, 0.1, 0.3], [1.0, 0.0, 0.0, 0.0], 12.5, 0.0)
    assert tcp.frame_id == BASE_FRAME and tcp.stamp == 12.5 and tcp.position == pytest.approx([0.4, 0.1, 0.3])
    scene.on_event(2, Event.START, "")
    scene.on_pose_error(PoseErrorInfo(2, "task", 7, {"cube": np.array([0.0, 0.05, 0.0])}))
    believed = scene.on_estimate("cube", [0.55, 0.0, 0.025], Q, True, 13.0, 0.1)
    assert believed.frame_id == BASE_FRAME and believed.stamp == 13.0
    assert believed.position == pytest.approx([0.55, 0.05, 0.025]) and believed.quat_xyzw == pytest.approx(Q)
    # an invalid or non-finite estimate is not believed; the last valid one stays
    assert scene.on_estimate("cube", [0.1, 0.1, 0.1], Q, False, 13.1, 0.2) is None
    assert scene.on_estimate("cube", [np.nan, 0.1, 0.1], Q, True, 13.1, 0.2) is None
    assert scene.believed().position == pytest.approx([0.55, 0.05, 0.025])
    # another object's estimate is not this mirror's
    assert scene.on_estimate("lid", [0.3, 0.3, 0.3], Q, True, 13.2, 0.3) is None
    true = scene.on_true_pose("cube", [0.55, 0.0, 0.025], Q, 13.0, 0.1)
    assert true.position == pytest.approx([0.55, 0.0, 0.025]) and true.frame_id == BASE_FRAME


# ---------------------------------------------------------------- markers
def test_every_slot_once_in_order_and_unknown_inputs_are_deleted():
    markers = VizScene().markers(0.0)
    assert [(m.ns, m.id, m.type) for m in markers] == list(MARKER_SLOTS)
    actions = {(m.ns, m.id): m.action for m in markers}
    assert actions.pop(("workspace", 0)) == MarkerAction.ADD and actions.pop(("status", 0)) == MarkerAction.ADD
    assert set(actions.values()) == {MarkerAction.DELETE}
    assert all(m.frame_id == BASE_FRAME for m in markers)


def test_workspace_box_is_the_configured_box():
    cfg = VizConfig(workspace_min=(0.25, -0.4, 0.01), workspace_max=(0.75, 0.4, 0.45))
    box = _by_key(VizScene(cfg).markers(0.0))[("workspace", 0)]
    points = np.array(box.points)
    assert box.type == MarkerType.LINE_LIST and points.shape == (24, 3) and box.lifetime_s == 0.0
    assert points.min(axis=0) == pytest.approx([0.25, -0.4, 0.01]) and points.max(axis=0) == pytest.approx(
        [0.75, 0.4, 0.45])
    # 12 axis-parallel edges of the box
    segments = points.reshape(12, 2, 3)
    lengths = sorted(np.round(np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1), 6))
    assert lengths == [0.44] * 4 + [0.5] * 4 + [0.8] * 4


def test_cube_edges_are_the_12_edges_of_the_cube():
    segments = cube_edges(0.05).reshape(12, 2, 3)
    assert np.abs(segments).max() == pytest.approx(0.025)
    assert np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1) == pytest.approx([0.05] * 12)
    assert len({tuple(sorted(map(tuple, s))) for s in segments.round(6)}) == 12
    assert box_edges((0, 0, 0), (1, 1, 1)).shape == (24, 3)


def test_cubes_believed_true_and_revealed():
    scene = VizScene(VizConfig(cube_size_m=0.04))
    scene.on_event(1, Event.START, "")
    scene.on_pose_error(PoseErrorInfo(1, "task", 3, {"cube": np.array([0.02, 0.0, 0.0])}))
    scene.on_estimate("cube", [0.5, 0.1, 0.02], Q, True, 1.0, 0.0)
    scene.on_true_pose("cube", [0.5, 0.1, 0.02], Q, 1.0, 0.0)
    m = _by_key(scene.markers(0.1))
    true, believed, edges = m[("cube/true", 0)], m[("cube/believed", 0)], m[("cube/believed", 1)]
    assert true.action == believed.action == edges.action == MarkerAction.ADD
    assert true.type == MarkerType.CUBE and true.position == pytest.approx([0.5, 0.1, 0.02])
    assert true.scale == pytest.approx([0.04] * 3) and true.quat_xyzw == pytest.approx(Q)
    assert true.color[3] > 0.8 > 0.5 > believed.color[3]           # true solid, believed transparent ...
    assert edges.type == MarkerType.LINE_LIST and edges.color[3] == 1.0   # ... with its edges drawn
    assert believed.position == edges.position == pytest.approx([0.52, 0.1, 0.02])
    assert np.abs(np.array(edges.points)).max() == pytest.approx(0.02)   # local to the cube pose
    assert m[("cube/revealed", 0)].action == MarkerAction.DELETE       # channel not valid yet
    scene.on_revealed("cube", [0.5, 0.1, 0.02], Q, True, 1.2, 0.2)
    m = _by_key(scene.markers(0.3))
    assert m[("cube/revealed", 0)].action == m[("cube/revealed", 1)].action == MarkerAction.ADD
    assert m[("cube/revealed", 1)].position == pytest.approx([0.5, 0.1, 0.02])
    scene.on_revealed("cube", [0.0, 0.0, 0.0], [0, 0, 0, 1], False, 1.3, 0.3)
    assert _by_key(scene.markers(0.4))[("cube/revealed", 0)].action == MarkerAction.DELETE
    # a new episode closes the channel
    scene.on_revealed("cube", [0.5, 0.1, 0.02], Q, True, 1.4, 0.4)
    scene.on_event(2, Event.START, "")
    assert _by_key(scene.markers(0.5))[("cube/revealed", 0)].action == MarkerAction.DELETE


def test_a_silent_input_is_no_longer_drawn():
    scene = VizScene(VizConfig(stale_after_s=1.0))
    scene.on_robot_state([0.4, 0.0, 0.3], [0, 0, 0, 1], 0.0, 10.0)
    scene.on_estimate("cube", [0.5, 0.0, 0.02], Q, True, 0.0, 10.0)
    scene.on_estimate("cube", [0.5, 0.0, 0.02], Q, False, 0.0, 10.8)   # invalid fits keep the believed cube
    assert _by_key(scene.markers(11.5))[("cube/believed", 0)].action == MarkerAction.ADD
    assert _by_key(scene.markers(11.5))[("tcp", 0)].action == MarkerAction.DELETE
    assert _by_key(scene.markers(11.9))[("cube/believed", 0)].action == MarkerAction.DELETE
    assert all(m.lifetime_s > 0 for m in scene.markers(11.9) if m.ns != "workspace")


def test_tcp_and_text_colours_follow_the_mode():
    assert rgba("#ff7f0e") == pytest.approx((1.0, 127 / 255, 14 / 255, 1.0))
    blue, orange, grey = mode_color(Mode.POLICY), mode_color(Mode.HUMAN), mode_color(Mode.HOLD)
    assert blue[2] > blue[0] and orange[0] > orange[2] and grey[0] == grey[1] == grey[2]
    assert mode_color(None) == grey and mode_color(7) == grey
    scene = VizScene()
    scene.on_robot_state([0.4, 0.0, 0.3], [0, 0, 0, 1], 0.0, 0.0)
    for mode, colour in ((Mode.POLICY, blue), (Mode.HUMAN, orange), (Mode.HOLD, grey)):
        scene.on_control(mode, 3, 17, "takeover_button" if mode == Mode.HUMAN else "", 0.0)
        m = _by_key(scene.markers(0.1))
        assert m[("tcp", 0)].color == colour and m[("status", 0)].color == colour
        assert m[("status", 0)].text.splitlines()[0] == f"{mode.name}  episode 3  step 17"
    assert "takeover_button" not in m[("status", 0)].text


def test_mode_colours_are_the_bag_plots():
    from imgen_ros.data.bag_plot import MODE_COLORS

    for mode, hex_color in MODE_COLORS.items():
        assert mode_color(mode) == rgba(hex_color)


def test_status_text_names_the_event_the_pose_error_and_staleness():
    scene = VizScene()
    assert scene.markers(0.0)[-1].text == "no control_state"
    scene.on_event(5, Event.START, "")
    scene.on_pose_error(PoseErrorInfo(5, "task", 42, {"cube": np.array([0.012, -0.03, 0.0])}))
    scene.on_control(Mode.HUMAN, 5, 20, "takeover_button", 0.0)
    scene.on_event(5, Event.TAKEOVER, "takeover_button")
    lines = scene.status_text(0.5).splitlines()
    assert lines == ["HUMAN  episode 5  step 20", "takeover_button", "episode 5: TAKEOVER",
                     "pose error task (seed 42): (+12, -30, +0) mm"]
    assert scene.status_text(5.0).splitlines()[0].endswith("(stale)")
    scene.on_event(5, Event.SUCCESS, "task_success")
    assert "episode 5: SUCCESS (task_success)" in scene.status_text(0.5)
    status = scene.markers(0.5)[-1]
    lo, hi = np.array(scene.config.workspace_min), np.array(scene.config.workspace_max)
    assert status.position[2] > hi[2] and lo[0] < status.position[0] < hi[0] and status.scale[2] > 0


def test_command_arrow_from_the_tcp_in_the_colour_of_its_source():
    scene = VizScene(VizConfig(arrow_gain=5.0))
    scene.on_robot_state([0.4, 0.0, 0.3], [0, 0, 0, 1], 0.0, 0.0)
    assert _by_key(scene.markers(0.0))[("command", 0)].action == MarkerAction.DELETE   # no command yet
    scene.on_command([0.01, -0.02, 0.0], Source.HUMAN, 0.0)
    arrow = _by_key(scene.markers(0.05))[("command", 0)]
    assert arrow.type == MarkerType.ARROW and arrow.action == MarkerAction.ADD
    start, tip = np.array(arrow.points)
    assert start == pytest.approx([0.4, 0.0, 0.3]) and tip == pytest.approx([0.45, -0.1, 0.3])
    assert arrow.color == mode_color(Mode.HUMAN) and arrow.scale[0] > 0 and arrow.scale[1] > arrow.scale[0]
    scene.on_command([0.0, 0.0, 0.01], Source.POLICY, 0.1)
    assert _by_key(scene.markers(0.1))[("command", 0)].color == mode_color(Mode.POLICY)
    # a HOLD (zero delta) and a command older than COMMAND_SHOWN_S draw no arrow
    assert _by_key(scene.markers(0.1 + COMMAND_SHOWN_S + 0.01))[("command", 0)].action == MarkerAction.DELETE
    scene.on_command([0.0, 0.0, 0.0], Source.SAFETY, 1.0)
    assert _by_key(scene.markers(1.0))[("command", 0)].action == MarkerAction.DELETE


# ---------------------------------------------------------------- config
def test_config_refuses_an_implausible_box_or_rate():
    with pytest.raises(ValueError, match="workspace_min must be < workspace_max"):
        VizConfig(workspace_min=(0.5, 0.0, 0.0), workspace_max=(0.4, 0.5, 0.5))
    with pytest.raises(ValueError, match="workspace_min"):
        VizConfig(workspace_min=(0.2, -0.5, -0.5))     # half a metre below the table
    with pytest.raises(ValueError, match="marker_rate_hz"):
        VizConfig(marker_rate_hz=0.0)


def test_the_launch_draws_the_box_the_arbiter_enforces(tmp_path):
    for name in ("arbiter.yaml", "arbiter_sim.yaml"):
        box = arbiter_workspace(REPO / "config" / name)
        arbiter = load_config(ArbiterConfig, REPO / "config" / name, "/fr3/intervention_arbiter",
                              ("watchdog_rate_hz", "state_rate_hz"))
        assert box == {"workspace_min": list(arbiter.safety.workspace_min),
                       "workspace_max": list(arbiter.safety.workspace_max)}
        VizConfig(workspace_min=tuple(box["workspace_min"]), workspace_max=tuple(box["workspace_max"]))
    broken = tmp_path / "arbiter.yaml"
    head = "/**/intervention_arbiter:\n  ros__parameters:\n    safety:\n"
    broken.write_text(head + "      workspace_min: [0.1, 0.1, 0.1]\n")
    with pytest.raises(ConfigError, match=re.escape("no safety.workspace_max")):
        arbiter_workspace(broken)
    broken.write_text(head + "      workspace_min: [0.5, 0.1, 0.1]\n      workspace_max: [0.4, 0.2, 0.2]\n")
    with pytest.raises(ConfigError, match="workspace_min must be < workspace_max"):
        arbiter_workspace(broken)


def test_rate_limiter_decimates_a_fast_stream():
    limit = RateLimiter(50.0)
    passed = [t for t in np.arange(0.0, 1.0, 0.004) if limit.ready(float(t))]   # 250 Hz in
    assert 49 <= len(passed) <= 51
    exact = RateLimiter(50.0)
    assert sum(exact.ready(t * 0.02 + (0.0005 if t % 2 else 0.0)) for t in range(100)) == 100   # jitter kept
    assert exact.ready(0.5)            # the clock jumped back (a bag replayed from its start)
    with pytest.raises(ValueError):
        RateLimiter(0.0)


# ---------------------------------------------------------------- viewer configs
def _msg_fields(name: str) -> set[str]:
    text = (REPO / "src" / "imgen_msgs" / "msg" / f"{name}.msg").read_text()
    return {line.split()[1] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
            and "=" not in line.split("#")[0]}


def test_rviz_config_shows_the_mirrors_in_the_base_frame():
    manager = yaml.safe_load((REPO / "config" / "imgen.rviz").read_text())["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == BASE_FRAME
    displays = {d["Class"].split("/")[-1]: d for d in manager["Displays"]}
    shown = {d["Topic"]["Value"] for d in manager["Displays"] if isinstance(d.get("Topic"), dict)}
    assert shown == {f"/{t}" for t in (topics.MARKERS, topics.TCP_POSE, topics.BELIEVED_POSE, topics.TRUE_POSE)}
    assert set(displays["MarkerArray"]["Namespaces"]) == {ns for ns, _, _ in MARKER_SLOTS}
    model = displays["RobotModel"]["Description Topic"]
    assert model["Value"] == "/robot_description" and model["Durability Policy"] == "Transient Local"


def test_foxglove_layout_shows_the_mirrors_and_plots_existing_fields():
    layout = json.loads((REPO / "config" / "foxglove_layout.json").read_text())
    panels = layout["configById"]

    def leaves(node):
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(panels)
    three_d = next(v for k, v in panels.items() if k.startswith("3D!"))
    assert three_d["followTf"] == BASE_FRAME
    assert {f"/{t}" for t in (topics.MARKERS, topics.TCP_POSE, topics.BELIEVED_POSE, topics.TRUE_POSE)} <= \
        set(three_d["topics"])
    paths = [p["value"] for k, v in panels.items() if not k.startswith("3D!") for p in v["paths"]]
    fields = {f"/{topics.POLICY_TIMING}": _msg_fields("LoopTiming"), f"/{topics.CONTROL_STATE}": _msg_fields(
        "ControlState"), f"/{topics.EPISODE_EVENTS}": _msg_fields("EpisodeEvent")}
    assert {p.split(".")[0] for p in paths} == set(fields)
    for path in paths:
        topic, field = path.split(".", 1)
        assert field in fields[topic], path
