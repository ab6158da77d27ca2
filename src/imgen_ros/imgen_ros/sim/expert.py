"""Scripted expert: follows the task's object-centric waypoints, subtask by subtask.

``ScriptedExpert(env, use_true_poses=True)`` is the privileged demonstrator; with
``use_true_poses=False`` it is the "naive" policy that trusts the observed (corrupted) poses and
ignores the observability channel, so pose corruption makes it fail.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import delta_to_action
from imgen_ros.sim.controller import rotation_error
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.task import Waypoint

MAX_ROT_STEP = 0.25  # rad per control step


def action_toward(env: TaskEnv, wp: Waypoint) -> tuple[NDArray[np.float64], bool]:
    """Normalized action moving the TCP toward ``wp`` (straight line, speed-capped) and whether
    the TCP is already within the waypoint's tolerances."""
    cur = env.eef_pose()
    dpos = wp.pose[:3, 3] - cur[:3, 3]
    drot = rotation_error(wp.pose[:3, :3], cur[:3, :3])
    dist, ang = float(np.linalg.norm(dpos)), float(np.linalg.norm(drot))
    reached = dist <= wp.tol and ang <= wp.rot_tol
    if dist > wp.max_step:
        dpos = dpos * (wp.max_step / dist)
    if ang > MAX_ROT_STEP:
        drot = drot * (MAX_ROT_STEP / ang)
    return delta_to_action(dpos, drot, wp.gripper, env.scale), reached


class ScriptedExpert:
    """Waypoint follower; the plan of each subtask is made when the subtask starts."""

    def __init__(self, env: TaskEnv, use_true_poses: bool, retry: bool | None = None) -> None:
        self.env = env
        self.use_true_poses = use_true_poses
        # replan when the plan runs out without success; the privileged expert (a human) does, the naive
        # policy does not (it has no idea it failed)
        self.retry = use_true_poses if retry is None else retry
        self.reset()

    def reset(self) -> None:
        self._plan: list[Waypoint] | None = None
        self._subtask = -1
        self._index = 0
        self._held = 0
        self._replan_after = False  # set by begin_recovery: replan the subtask once the prefix is done

    def poses(self) -> dict[str, NDArray[np.float64]]:
        return self.env.object_poses(observed=not self.use_true_poses)

    def current_subtask(self) -> int:
        """Index of the first subtask whose termination signal has not fired yet."""
        signals = self.env.term_signals()
        for i, sub in enumerate(self.env.subtasks):
            if sub.term_signal is None or not signals.get(sub.term_signal, False):
                return i
        return len(self.env.subtasks) - 1

    def begin_recovery(self, prefix: list[Waypoint] | None = None) -> None:
        """Back off (``prefix`` or the task's recovery waypoints), then replan the current subtask."""
        if prefix is None:
            prefix = self.env.task.recovery_waypoints(self.env, self.poses())
        self._plan = list(prefix)
        self._subtask = self.current_subtask()
        self._index = 0
        self._held = 0
        self._replan_after = True

    def act(self, obs: dict[str, NDArray[np.float64]] | None = None) -> NDArray[np.float64]:
        sub = self.current_subtask()
        if self._plan is None or sub != self._subtask:
            self._start_subtask(sub)
        assert self._plan is not None
        exhausted = self._index >= len(self._plan)
        if exhausted and (self._replan_after or (self.retry and not self.env.is_success())):
            # recovery prefix done, or the plan ran out without success (e.g. the object slipped or was
            # re-grasped): plan the subtask again from the current state
            self._replan_after = False
            self._start_subtask(sub)
        wp = self._plan[min(self._index, len(self._plan) - 1)]
        action, reached = action_toward(self.env, wp)
        if reached and self._index < len(self._plan):
            self._held += 1
            if self._held > wp.wait:
                self._index += 1
                self._held = 0
        return action

    def _start_subtask(self, sub: int) -> None:
        self._plan = self.env.task.expert_waypoints(self.env, sub, self.poses())
        if not self._plan:
            raise RuntimeError(f"task {self.env.name!r} gave no waypoints for subtask {sub}")
        self._subtask = sub
        self._index = 0
        self._held = 0
