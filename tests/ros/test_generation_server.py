"""The GenerateInterventions action: I-MG generation from a source file, with progress feedback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from imgen_ros.core import topics
from rclpy.action import ActionClient
from rclpy.node import Node

from imgen_msgs.action import GenerateInterventions

sys.path.insert(0, str(Path(__file__).parent))
from graph import node_cmd


def _wait(future, timeout: float):
    deadline = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return future.result()


@pytest.mark.slow
def test_generate_interventions_action_reports_progress_and_writes_the_dataset(
        ros_context, ros_spin, node_process, tmp_path):
    source = tmp_path / "source.hdf5"
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "collect", "interventions", "--task",
                          "block_grasp", "--episodes", "2", "--out", str(source), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    server = node_process(node_cmd("generation_server", None, feedback_period_s=0.2), name="generation")
    node = Node("generation_client", context=ros_context)
    client = ActionClient(node, GenerateInterventions, topics.GENERATE_INTERVENTIONS)
    ros_spin(node)
    assert client.wait_for_server(timeout_sec=30), server.errors()

    bad = GenerateInterventions.Goal(task="block_grasp", source_path=str(tmp_path / "missing.hdf5"),
                                     num_episodes=1, output_path=str(tmp_path / "x.hdf5"))
    assert not _wait(client.send_goal_async(bad), 30).accepted

    feedback: list[GenerateInterventions.Feedback] = []
    out = tmp_path / "generated.hdf5"
    goal = GenerateInterventions.Goal(task="block_grasp", source_path=str(source), policy="expert",
                                      num_episodes=3, workers=1, seed=0, output_path=str(out))
    handle = _wait(client.send_goal_async(goal, feedback_callback=lambda m: feedback.append(m.feedback)), 30)
    assert handle.accepted
    result = _wait(handle.get_result_async(), 300).result
    assert result.success, result.message
    assert result.generated == 3 and result.attempts >= 3 and Path(result.output_path) == out
    assert feedback, "no progress feedback"
    last = feedback[-1]
    assert last.successes == 3 and last.attempts == result.attempts
    assert 0 < last.success_rate <= 1 and last.episodes_per_minute > 0

    from imgen_ros.data.reader import DatasetReader
    with DatasetReader(out) as reader:
        assert len(reader.demos()) == 3
