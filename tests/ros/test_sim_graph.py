"""The sim graph as separate processes over DDS: closed loop at 20 Hz with the expert on noise-free
block grasp, and a simulated-human takeover recorded, converted by `imgen bag2hdf5` and accepted
by `imgen generate imgen`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core import topics

from imgen_msgs.msg import DeltaPoseCommand, EpisodeEvent

sys.path.insert(0, str(Path(__file__).parent))
from graph import assert_commands_within_limits, run_episode, sim_safety, start_graph
from probe import Probe
from test_diagnostics_graph import DiagnosticsListener

# Real-time assertions on a shared 2-core machine: a run disturbed by other load is retried (up to
# twice); a genuine regression fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=3)


def test_closed_loop_expert_succeeds_on_noise_free_block_grasp(ros_context, ros_spin, node_process, wait_until):
    probe = Probe(ros_context)
    ros_spin(probe)
    start_graph(node_process, wait_until, probe, sim={"noise": "off"}, policy={"checkpoint": "expert"})
    outcomes = []
    for seed in range(3):
        _, events = run_episode(probe, seed)
        outcomes.append(next(e for e in events if e.event in (1, 2, 3)))
        assert not any(e.event == EpisodeEvent.EVENT_TAKEOVER for e in events), "no mistake, no takeover"
    assert [o.event for o in outcomes] == [EpisodeEvent.EVENT_SUCCESS] * 3, [(o.event, o.reason) for o in outcomes]
    # 20 Hz: the policy loop's measured period, and the commands that reached the robot
    periods = np.array([r.msg.period_s for r in probe.messages(topics.POLICY_TIMING) if np.isfinite(r.msg.period_s)])
    assert len(periods) > 40 and abs(np.median(periods) - 0.05) < 0.005
    policy_cmds = [r for r in probe.messages(topics.ROBOT_COMMAND) if r.msg.source == DeltaPoseCommand.SOURCE_POLICY]
    gaps = np.diff([r.t for r in policy_cmds])
    assert abs(np.median(gaps) - 0.05) < 0.005
    assert assert_commands_within_limits(probe, sim_safety()) == len(probe.messages(topics.ROBOT_COMMAND))


@pytest.mark.slow
def test_simulated_human_takeover_is_recorded_and_becomes_an_imgen_source(ros_context, ros_spin, node_process,
                                                                          wait_until, tmp_path):
    probe, listener = Probe(ros_context), DiagnosticsListener(ros_context)
    ros_spin(probe, listener)
    record_dir = tmp_path / "bags"
    start_graph(node_process, wait_until, probe, sim={"noise": "on", "simulated_human": True},
                policy={"checkpoint": "expert"}, recorder_dir=record_dir, recorder={"noise": "on"})
    took_over = None
    for seed in range(6):
        episode, events = run_episode(probe, seed)
        kinds = [e.event for e in events]
        if EpisodeEvent.EVENT_TAKEOVER in kinds and EpisodeEvent.EVENT_SUCCESS in kinds:
            took_over = episode
            break
    assert took_over is not None, "the naive expert never erred into a successful human recovery in 6 episodes"
    # the simulated human's /diagnostics report counts its takeovers
    human = "/sim_human_teleop: device"
    wait_until(lambda: any(s.hardware_id == "sim" and int(s.values["interventions"]) >= 1
                           for s in listener.history(human)), 5, "the human's report of its intervention",
               details=lambda: str(listener.latest(human)))
    assert_commands_within_limits(probe, sim_safety())
    wait_until(lambda: len(list(record_dir.glob("*/metadata.yaml"))) >= took_over, 10, "bags closed")

    out = tmp_path / "interventions.hdf5"
    env = dict(__import__("os").environ)
    res = subprocess.run(["imgen", "bag2hdf5", str(record_dir), "--out", str(out)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout

    from imgen_ros.data.reader import DatasetReader
    with DatasetReader(out) as reader:
        assert reader.env_name == "block_grasp"
        demos = reader.demos()
        assert len(demos) == took_over
        modes = reader.action_modes(demos[took_over - 1])
        assert set(np.unique(modes)) == {0, 1}
        first_human = int(np.argmax(modes == 1))
        assert np.all(modes[:first_human] == 0) and np.all(modes[first_human:] == 1)
        episode = reader.load_episode(demos[took_over - 1])
        assert episode.rewards[-1] == 1.0 and episode.dones[-1] == 1
        assert episode.obs["object"].shape[1] == 15

    generated = tmp_path / "generated.hdf5"
    res = subprocess.run(["imgen", "generate", "imgen", "--task", "block_grasp", "--source", str(out), "--n", "1",
                          "--out", str(generated), "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr + res.stdout
    with DatasetReader(generated) as reader:
        assert len(reader.demos()) == 1
