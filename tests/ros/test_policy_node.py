"""policy_node with a robomimic BC-RNN checkpoint (trained here at smoke scale): 20 Hz commands
from robot state + pose estimate, loop timing, recurrent state reset at every episode START, and
silence (so the arbiter holds) when its inputs stop."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics
from imgen_ros.nodes._ros import qos
from rclpy.parameter import Parameter

from imgen_msgs.msg import EpisodeEvent

sys.path.insert(0, str(Path(__file__).parent))
from fake_inputs import FakeInputs
from probe import Probe

# Real-time assertions on a shared 2-core machine: a run disturbed by other load is retried (up to
# twice); a genuine regression fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("policy")
    demos = tmp / "demos.hdf5"
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "collect", "demos", "--task", "block_grasp",
                          "--episodes", "2", "--out", str(demos), "--quiet"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    from imgen_ros.policy.train import TrainConfig, train

    cfg = TrainConfig(task="block_grasp", datasets=[str(demos)], out_dir=str(tmp / "run"), epochs=2,
                      steps_per_epoch=3, eval_every=0, batch_size=8, seq_length=5, rnn_hidden_dim=16, gmm_modes=2,
                      num_threads=1)
    return Path(train(cfg, progress=lambda _: None).last_checkpoint)


def _event(pub, episode: int, event: int) -> None:
    pub.publish(EpisodeEvent(episode_id=episode, task="block_grasp", event=event))


def test_policy_node_runs_a_checkpoint_at_20_hz_and_resets_per_episode(checkpoint, ros_context, ros_spin,
                                                                       wait_until):
    from imgen_ros.nodes.policy_node import PolicyNode

    node = PolicyNode(context=ros_context, parameter_overrides=[Parameter("checkpoint", value=str(checkpoint))])
    inputs = FakeInputs(ros_context)
    inputs.alive["policy"] = inputs.alive["teleop"] = False
    events = inputs.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))
    probe = Probe(ros_context)
    ros_spin(node, inputs, probe)
    time.sleep(1.0)
    assert not probe.messages(topics.POLICY_COMMAND), "no episode: no commands"

    firsts, drifts = [], []
    for episode in (1, 2):
        t0 = time.monotonic()
        _event(events, episode, EpisodeEvent.EVENT_START)
        wait_until(lambda t0=t0: len(probe.messages(topics.POLICY_COMMAND, t0)) >= 20, 10, "20 policy commands")
        commands = probe.messages(topics.POLICY_COMMAND, t0)
        firsts.append(np.r_[commands[0].msg.translation, commands[0].msg.rotation, commands[0].msg.gripper])
        later = np.r_[commands[19].msg.translation, commands[19].msg.rotation, commands[19].msg.gripper]
        drifts.append(np.abs(later - firsts[-1]).max())   # same input, 20 steps later: the LSTM state moved
        assert commands[0].msg.step == 0 and [c.msg.step for c in commands[:5]] == [0, 1, 2, 3, 4]
        _event(events, episode, EpisodeEvent.EVENT_SUCCESS)
        time.sleep(0.3)
    # the same observation right after each START gives the same action up to the GMM's low eval noise
    # (~1e-4), far below what the recurrent state changes within an episode: the state was reset
    assert min(drifts) > 2e-3
    assert np.abs(firsts[0] - firsts[1]).max() < 1e-3
    stamps = [r.t for r in probe.messages(topics.POLICY_COMMAND)]
    assert abs(np.median(np.diff(stamps)) - 0.05) < 0.01
    timing = [r.msg for r in probe.messages(topics.POLICY_TIMING)]
    assert timing and all(m.compute_s > 0 and m.observation_age_s >= 0 for m in timing)
    assert all(abs(c) <= 0.05 + 1e-9 for r in probe.messages(topics.POLICY_COMMAND) for c in r.msg.translation)

    # inputs stop -> the policy goes quiet (the arbiter's watchdog then holds)
    t0 = time.monotonic()
    _event(events, 3, EpisodeEvent.EVENT_START)
    wait_until(lambda: len(probe.messages(topics.POLICY_COMMAND, t0)) >= 3, 10, "episode 3 commands")
    inputs.alive["robot_state"] = False
    time.sleep(0.6)
    quiet_since = time.monotonic()
    time.sleep(0.5)
    assert not probe.messages(topics.POLICY_COMMAND, quiet_since)


def test_task_pose_error_is_sampled_per_episode_published_and_applied(ros_context, ros_spin, wait_until):
    """The real launch's pose_error:=task: the task's own corruption model (core.corruption, as in the
    simulator), seeded per episode, published for the recorder; LoopTiming reports the inputs' ages."""
    from imgen_ros.core.corruption import sample_task_corruption
    from imgen_ros.nodes.policy_node import PolicyNode

    node = PolicyNode(context=ros_context, parameter_overrides=[
        Parameter("checkpoint", value="expert"), Parameter("observation.noise.mode", value="task"),
        Parameter("observation.noise.seed", value=7), Parameter("fresh_state_s", value=0.005)])
    inputs = FakeInputs(ros_context)
    inputs.alive["policy"] = inputs.alive["teleop"] = False
    events = inputs.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos(topics.EPISODE_EVENTS))
    probe = Probe(ros_context)
    ros_spin(node, inputs, probe)
    wait_until(lambda: events.get_subscription_count() > 0, 15, "discovery")
    for episode in (3, 4):
        _event(events, episode, EpisodeEvent.EVENT_START)
        wait_until(lambda e=episode: any(r.msg.episode_id == e for r in probe.messages(topics.POSE_ERROR)), 10,
                   f"the pose error of episode {episode}")
        error = next(r.msg for r in probe.messages(topics.POSE_ERROR) if r.msg.episode_id == episode)
        expected = sample_task_corruption("block_grasp", np.random.default_rng(7 + episode))["cube"]
        assert (error.mode, error.task, error.seed, list(error.object_ids)) == ("task", "block_grasp", 7 + episode,
                                                                                 ["cube"])
        got = np.array([error.offsets[0].x, error.offsets[0].y, error.offsets[0].z])
        np.testing.assert_allclose(got, expected)
        assert 0.025 <= abs(got[1]) <= 0.07 and abs(got[0]) <= 0.01     # the paper's block grasp error
        np.testing.assert_allclose(node.noise.sample_for(["cube"])["cube"], expected)   # what the policy sees
    wait_until(lambda: len(probe.messages(topics.POLICY_TIMING)) >= 5, 10, "decisions")
    timing = [r.msg for r in probe.messages(topics.POLICY_TIMING)]
    assert all(-0.005 < m.state_age_s < 0.2 and -0.005 < m.pose_age_s < 1.0 for m in timing)
