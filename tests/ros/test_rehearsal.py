"""imgen rehearse end to end (the real graph's nodes as processes over DDS, sim_node as FR3 + D415) and
sim_node's perturbation hooks measured on what it publishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.data.bag import bag_custom_data
from imgen_ros.nodes._ros import pose_msg_arrays, qos
from imgen_ros.policy.evaluate import EVAL_SEED_BASE
from imgen_ros.rehearsal.perturbations import push_offset
from imgen_ros.rehearsal.plan import node_command
from imgen_ros.rehearsal.processes import DDS_PROFILE_ENV, write_dds_profile
from imgen_ros.sim.cameras import D415_DEPTH_640x480, DepthNoiseConfig
from rclpy.node import Node
from sensor_msgs.msg import Image

from imgen_msgs.msg import EpisodeEvent, ObjectPoseEstimate

# A real-time graph on a shared 2-core machine: a run disturbed by other load is retried (up to twice);
# a genuine regression fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=3)

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_rehearsal_smoke_with_the_expert(tmp_path):
    """Two episodes through the whole graph: the simulator ends them, the seeds are imgen eval's, every
    figure of the row is measured, one bag per episode, the in-process comparison on the same seeds."""
    out = tmp_path / "rehearsal"
    # pose error off: the naive expert then succeeds unless the graph (ICP, reveal, arbiter) breaks it.
    # Time scale 0.5, as docs/results.md runs it on 2 cores: at 1.0 a slow, loaded machine overruns the graph.
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "rehearse", "--checkpoint", "expert",
                          "--episodes", "2", "--pose-error", "off", "--time-scale", "0.5", "--out", str(out)],
                         capture_output=True, text=True, timeout=420, env=dict(os.environ))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "episode 1/2 seed 1000000" in res.stdout and "episode 2/2 seed 1000001" in res.stdout, res.stdout
    doc = json.loads((out / "results.json").read_text())
    (row,) = doc["rows"]
    s, episodes = row["summary"], row["episodes"]
    assert (s["label"], s["perturbation"], s["trials"]) == ("expert", "none", 2)
    assert [e["seed"] for e in episodes] == [EVAL_SEED_BASE, EVAL_SEED_BASE + 1]
    assert all(e["outcome"] in ("SUCCESS", "FAILURE") for e in episodes), episodes   # ended by the simulator
    # The expert's success through a real-time graph depends on the machine's load (a measured figure of
    # the rehearsal runs, docs/results.md), not asserted here; the count must agree with the outcomes.
    assert s["successes"] == sum(e["outcome"] == "SUCCESS" for e in episodes), (episodes, s["notes"])
    assert all(e["steps"] > 0 and e["reason"] for e in episodes), [(e["outcome"], e["reason"], e["steps"],
                                                                    e["fault_holds"]) for e in episodes]
    for e in episodes:
        assert e["pose_error_seed"] == e["seed"]               # policy_node's corruption seed = the scene seed
        assert e["scene_error_mm"] < 0.1                       # the scene is imgen eval's for that seed
        assert e["icp_error_mm"] is not None and e["icp_error_mm"] < 10.0   # ICP on the rendered D415 depth
        assert e["takeovers"] == 0 and e["steps"] > 0
        # ended by the simulator's rule. Not a bound on steps: they are the arbiter's commands sent, which
        # exceed the simulator's executed steps when an overloaded simulator's command queue overflows.
        assert e["reason"] in ("task_success", "horizon"), e["reason"]
        assert len(e["eval_pose_error_m"]) == 3
    assert s["decisions"] > 0 and s["state_age_ms"]["p50"] is not None and s["pose_age_ms"]["p99"] is not None
    assert s["pose_rate_hz_p50"] > 0
    assert set(s["cpu_s"]) == {"sim_node", "cube_pose_estimator", "contact_detector", "policy_node",
                               "intervention_arbiter", "joy_teleop", "recorder"}
    assert s["in_process"]["trials"] == 2 and len(s["in_process"]["per_trial_success"]) == 2
    assert doc["config"]["safety"]["max_rotation_rad"] == 0.4     # the real robot's arbiter file
    bags = sorted((out / "bags" / "expert__none").iterdir())
    assert len(bags) == 2
    outcomes = [bag_custom_data(b) for b in bags]
    assert [c["imgen_complete"] for c in outcomes] == ["true", "true"]
    assert [c["imgen_outcome"] for c in outcomes] == [e["outcome"] for e in episodes]
    assert "| expert | none |" in (out / "results.md").read_text()
    assert (out / "fastdds_profile.xml").is_file()


class Listener(Node):
    def __init__(self, context) -> None:
        super().__init__("rehearsal_listener", context=context)
        self.lock = threading.Lock()
        self.images: list[Image] = []
        self.truth: list[ObjectPoseEstimate] = []
        self.create_subscription(Image, topics.DEPTH_IMAGE, self._image, qos(topics.DEPTH_IMAGE))
        self.create_subscription(ObjectPoseEstimate, topics.OBJECT_POSE_TRUE, self._truth, qos(topics.OBJECT_POSE_TRUE))
        self.events = self.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))

    def _image(self, msg: Image) -> None:
        with self.lock:
            self.images.append(msg)

    def _truth(self, msg: ObjectPoseEstimate) -> None:
        with self.lock:
            self.truth.append(msg)

    def cube(self) -> np.ndarray | None:
        with self.lock:
            return pose_msg_arrays(self.truth[-1].pose)[0] if self.truth else None


def _sim(node_process, tmp_path: Path, **params):
    cmd = node_command(sys.executable, "sim_node", CONFIG / "sim.yaml", {"simulated_human": False, **params})
    return node_process(cmd, name="sim_node", env={DDS_PROFILE_ENV: str(write_dds_profile(tmp_path / "dds.xml"))})


def test_depth_noise_scale_reaches_the_simulated_d415(ros_context, ros_spin, node_process, wait_until, tmp_path):
    """Frame-to-frame depth differences of the resting scene: their spread is sqrt(2) x the camera's sigma,
    which with depth_noise_scale 2 is twice the D415 model's (sim.cameras.DepthNoiseConfig)."""
    sim = _sim(node_process, tmp_path, depth_rate_hz=5.0, publish_observed_pose=False, depth_noise_scale=2.0)
    listener = Listener(ros_context)
    ros_spin(listener)
    wait_until(lambda: len(listener.images) >= 4 or not sim.alive(), 90, "4 depth frames")
    assert sim.alive(), sim.errors()[-2000:]
    with listener.lock:
        a, b = (np.frombuffer(bytes(m.data), np.uint16).reshape(m.height, m.width) * 1e-3
                for m in listener.images[-2:])
    both = (a > 0) & (b > 0)
    model = DepthNoiseConfig().sigma_at(a[both], D415_DEPTH_640x480.fx)   # scale 1, at each pixel's depth
    normalized = (a[both] - b[both]) / (np.sqrt(2.0) * model)
    spread = 1.4826 * np.median(np.abs(normalized - np.median(normalized)))   # robust: the arm may sway
    assert both.sum() > 100_000
    assert 1.8 < spread < 2.2, spread


def test_push_moves_the_cube_3_cm_at_its_step(ros_context, ros_spin, node_process, wait_until, tmp_path):
    seed = EVAL_SEED_BASE + 5
    sim = _sim(node_process, tmp_path, seed=seed, push_step=3, push_distance_m=0.03)
    listener = Listener(ros_context)
    ros_spin(listener)
    wait_until(lambda: listener.cube() is not None or not sim.alive(), 60, "sim_node's ground truth")
    assert sim.alive(), sim.errors()[-2000:]
    time.sleep(0.5)
    before = listener.cube()
    wait_until(lambda: listener.events.get_subscription_count() >= 1, 30, "sim_node subscribed to episode_events")
    start = EpisodeEvent(episode_id=1, task="block_grasp", event=EpisodeEvent.EVENT_START, reason="test")
    start.header.stamp = listener.get_clock().now().to_msg()
    listener.events.publish(start)   # sim_node counts this episode's control steps (holding: no commands)
    wait_until(lambda: np.linalg.norm(listener.cube() - before) > 0.01 or not sim.alive(), 30, "the push")
    time.sleep(0.5)
    moved = listener.cube() - before
    assert np.allclose(moved, push_offset(seed, 0.03), atol=1e-3), moved
    assert np.linalg.norm(moved[:2]) == pytest.approx(0.03, abs=1e-3)
    assert "pushed cube" in sim.output() + sim.errors()
