"""generation_server: the GenerateInterventions action (I-MG generation with progress feedback).

Each goal runs ``imgen generate imgen`` (imgen_ros.datagen; deterministic, journaled, resumable)
as a child process, so a cancel stops it cleanly (SIGINT; rerunning the same goal resumes from the
journal). Feedback every ``feedback_period_s``: attempts and successes from the run's journal,
success rate, kept episodes per minute and the ETA. One goal at a time. ``feedback_period_s`` is
live (from the next goal on). ``/diagnostics``: idle / running (progress) / the last goal failed
(WARN).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from imgen_msgs.action import GenerateInterventions
from imgen_ros.core import diagnostics as diag
from imgen_ros.core import topics
from imgen_ros.core.params import check_fields, param
from imgen_ros.nodes._ros import attach_diagnostics, declare_config, run


def journal_progress(out: Path) -> tuple[int, int]:
    """(attempts, successes) journaled so far by a generation run writing ``out``."""
    from imgen_ros.datagen.journal import JournalError, journal_counts, journal_path

    try:
        return journal_counts(journal_path(out))
    except JournalError:  # not a journal this imgen reads; the generation run itself reports it
        return 0, 0


def final_counts(out: Path) -> tuple[int, int]:
    """(kept episodes, attempts) of a finished output file."""
    from imgen_ros.data.reader import DatasetReader

    with DatasetReader(out) as reader:
        stats = reader.json_attr("imgen_stats", {}) or {}
        return len(reader.demos()), int(stats.get("attempts", 0))


def generate_command(goal: GenerateInterventions.Goal) -> list[str]:
    workers = goal.workers or os.cpu_count() or 1
    return [sys.executable, "-m", "imgen_ros.cli.main", "generate", "imgen", "--task", goal.task,
            "--source", goal.source_path, "--n", str(goal.num_episodes), "--out", goal.output_path,
            "--seed", str(goal.seed), "--workers", str(workers), "--policy", goal.policy or "expert", "--quiet"]


@dataclass(frozen=True)
class GenerationServerConfig:
    feedback_period_s: float = param(1.0, "progress feedback period [s] (live: from the next goal on)", "[0.05, 60]",
                                     live=True)

    def __post_init__(self) -> None:
        check_fields(self)


class GenerationServer(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("generation_server", **kwargs)
        self.config = declare_config(self, GenerationServerConfig, on_change=self._reconfigure)
        self.busy = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.progress = ""          # the running goal's last feedback, in words
        self.last_failure = ""      # why the last finished goal failed ("" when it succeeded)
        self.goals = 0
        attach_diagnostics(self, self._diagnostics, "none")
        group = ReentrantCallbackGroup()
        self.server = ActionServer(self, GenerateInterventions, topics.GENERATE_INTERVENTIONS, self._execute,
                                   goal_callback=self._on_goal, cancel_callback=self._on_cancel,
                                   callback_group=group)

    def _reconfigure(self, config: GenerationServerConfig) -> None:
        self.config = config    # _execute reads feedback_period_s at the start of each goal

    def _diagnostics(self) -> list[diag.Status]:
        running = self.busy.locked()
        state = f"running: {self.progress or 'starting'}" if running else f"idle ({self.goals} goals done)"
        return [diag.flag_status("generation", not self.last_failure, state,
                                 f"{state}; last goal failed: {self.last_failure}",
                                 {"running": str(running), "goals": str(self.goals),
                                  "last_failure": self.last_failure})]

    def _on_goal(self, goal: GenerateInterventions.Goal) -> GoalResponse:
        problems = []
        if not goal.task:
            problems.append("task is empty")
        if not Path(goal.source_path).is_file():
            problems.append(f"source_path {goal.source_path!r} is not a file")
        if goal.num_episodes < 1:
            problems.append("num_episodes must be >= 1")
        if not goal.output_path:
            problems.append("output_path is empty")
        if self.busy.locked():
            problems.append("another generation is running")
        if problems:
            self.get_logger().error("rejected generation goal: " + "; ".join(problems))
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, _goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle):
        goal: GenerateInterventions.Goal = goal_handle.request
        result = GenerateInterventions.Result(output_path=goal.output_path)
        out = Path(goal.output_path)
        with self.busy:
            t0 = time.monotonic()
            log = out.with_name(out.name + ".log")
            out.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as log_file:
                self.proc = subprocess.Popen(generate_command(goal), stdout=log_file, stderr=subprocess.STDOUT)
                period = self.config.feedback_period_s
                while self.proc.poll() is None:
                    if goal_handle.is_cancel_requested:
                        self.proc.send_signal(signal.SIGINT)
                        self.proc.wait(timeout=30)
                        goal_handle.canceled()
                        result.message = "canceled; rerun the same goal to resume from the journal"
                        return result
                    attempts, successes = journal_progress(out)
                    self.progress = f"{successes}/{goal.num_episodes} kept of {attempts} attempts"
                    goal_handle.publish_feedback(self._feedback(attempts, successes, goal.num_episodes, t0))
                    time.sleep(period)
            rc = self.proc.returncode
        text = log.read_text()[-2000:]
        self.goals += 1
        if rc != 0:
            goal_handle.abort()
            result.message = f"imgen generate imgen failed (exit {rc}): {text.strip().splitlines()[-1:]}"
            self.last_failure = result.message
            self.get_logger().error(result.message)
            return result
        self.last_failure = ""
        result.generated, result.attempts = final_counts(out)
        goal_handle.publish_feedback(self._feedback(result.attempts, result.generated, goal.num_episodes, t0))
        result.success = result.generated >= goal.num_episodes
        result.message = text.strip().splitlines()[-1] if text.strip() else "done"
        goal_handle.succeed()
        return result

    @staticmethod
    def _feedback(attempts: int, successes: int, target: int, t0: float) -> GenerateInterventions.Feedback:
        elapsed = max(time.monotonic() - t0, 1e-6)
        per_s = successes / elapsed
        fb = GenerateInterventions.Feedback(attempts=attempts, successes=successes)
        fb.success_rate = successes / attempts if attempts else 0.0
        fb.episodes_per_minute = per_s * 60.0
        fb.eta_s = (target - successes) / per_s if per_s > 0 else float("inf")
        return fb

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)


def main(args: list[str] | None = None) -> None:
    run(GenerationServer, args, threads=2)


if __name__ == "__main__":
    main()
