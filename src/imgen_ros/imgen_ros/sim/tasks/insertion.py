"""Shared shape of the held-object insertion tasks (nut insertion, two-piece assembly).

An object starts held in the closed gripper above the table; a fixed (mocap) target sits in a
10 x 10 cm region. The expert moves the held object above the target, aligns it, inserts it,
releases it and backs off. Targets are corrupted in (x, y); contact between the held object and the
target reveals the target's pose (full) or a partial cue. A mistake is the held object landing on
the target (rim / top) while not aligned with it, touching the table beside it, or going down
beside it (below its top while not aligned).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import make_pose, pose_inv, yaw_matrix
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.task import Pose, Task, Waypoint
from imgen_ros.sim.tasks.common import TOP_DOWN, place_in_hand, set_mocap_pose

REGION_X = (0.50, 0.60)
REGION_Y = (-0.05, 0.05)
MISALIGN_MARGIN = 0.002  # m beyond the success tolerance before a contact counts as a mistake
MIN_GRASP_Z = 0.012  # m; lowest TCP height for picking an object off the table (fingertips clear it)
BESIDE_DEPTH = 0.005  # m below the target's top while misaligned: the object went down beside it


class HeldInsertionTask(Task):
    """Subclasses set the geometry constants and ``build``; sampling, checks and expert are shared."""

    held: ClassVar[str]
    target: ClassVar[str]
    held_bottom: ClassVar[float]       # held-body origin to its lowest point (m)
    target_top: ClassVar[float]        # target's top surface height above the table (m)
    inserted_z: ClassVar[float]        # held-body origin height when fully inserted (m)
    grasp_offset: ClassVar[NDArray[np.float64]]  # held-body origin in the TCP frame at the start
    finger_gap: ClassVar[float]        # gripper opening on the held object (m)
    align_tol: ClassVar[float]         # max xy error (m) of an inserted object for success
    insert_depth: ClassVar[float]      # held bottom at least this far below target_top for success

    def reset_scene(self, env: TaskEnv, rng: np.random.Generator) -> None:
        x = rng.uniform(*REGION_X)
        y = rng.uniform(*REGION_Y)
        set_mocap_pose(env, self.target, np.array([x, y, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]))
        place_in_hand(env, self.held, make_pose(self.grasp_offset, TOP_DOWN.T), self.finger_gap)

    def _held_bottom_z(self, env: TaskEnv) -> float:
        return float(env.data.xpos[env.model.body(self.held).id][2] - self.held_bottom)

    def _xy_error(self, env: TaskEnv) -> float:
        d = env.data.xpos[env.model.body(self.held).id] - env.data.xpos[env.model.body(self.target).id]
        return float(np.hypot(d[0], d[1]))

    def is_success(self, env: TaskEnv) -> bool:
        inserted = self._held_bottom_z(env) < self.target_top - self.insert_depth
        return bool(inserted and self._xy_error(env) < self.align_tol)

    def mistake(self, env: TaskEnv) -> bool:
        if env.touching("hand", "table") or env.touching("fingers", self.target):
            return True
        if self._xy_error(env) <= self.align_tol + MISALIGN_MARGIN:
            return False
        if env.touching(self.held, self.target) or env.touching(self.held, "table"):
            return True
        # passed down beside the target without touching it
        return self._held_bottom_z(env) < self.target_top - BESIDE_DEPTH

    def _tcp_for(self, env: TaskEnv, held_pose: Pose) -> Pose:
        """TCP pose that puts the held object at ``held_pose`` with the current grasp."""
        tcp_from_held = pose_inv(env.eef_pose()) @ env.body_pose(self.held)
        return held_pose @ pose_inv(tcp_from_held)

    def holding(self, env: TaskEnv) -> bool:
        """The gripper is closed on the held object (a finger touches it)."""
        return env.gripper_command > 0 and env.touching("fingers", self.held)

    def expert_waypoints(self, env: TaskEnv, subtask: int, poses: dict[str, Pose]) -> list[Waypoint]:
        if not self.holding(env):
            return self._regrasp_waypoints(env)
        t = poses[self.target][:3, 3]
        # insert the object level, turned to the target's yaw (the nearest of its 4 symmetric yaws)
        held_yaw = _yaw_of(env.body_pose(self.held)[:3, :3])
        target_yaw = _yaw_of(poses[self.target][:3, :3])
        yaw = target_yaw + np.pi / 2 * np.round((held_yaw - target_yaw) / (np.pi / 2))
        rot = yaw_matrix(yaw)

        def at(z: float) -> Pose:
            return self._tcp_for(env, make_pose((t[0], t[1], z), rot))

        clear = self.target_top + self.held_bottom
        release = at(self.inserted_z)
        lifted = release.copy()
        lifted[2, 3] += 0.08
        return [
            Waypoint(at(clear + 0.05), 1.0, max_step=0.04, tol=0.008, rot_tol=0.1),
            Waypoint(at(clear + 0.008), 1.0, max_step=0.02, tol=0.0015, rot_tol=0.03, wait=1),
            Waypoint(release, 1.0, max_step=0.01, tol=0.003),
            Waypoint(release, -1.0, tol=0.01, wait=3),
            Waypoint(lifted, -1.0, max_step=0.03, tol=0.01),
        ]

    def _regrasp_waypoints(self, env: TaskEnv) -> list[Waypoint]:
        """Pick the (dropped, upright) object up again with the nominal grasp; the expert replans
        the insertion once these are done."""
        body = env.body_pose(self.held)
        upright = make_pose(body[:3, 3], yaw_matrix(_yaw_of(body[:3, :3])))
        grasp = upright @ pose_inv(make_pose(self.grasp_offset, TOP_DOWN.T))
        grasp[2, 3] = max(grasp[2, 3], MIN_GRASP_Z)
        above = grasp.copy()
        above[2, 3] += 0.08
        return [
            Waypoint(above, -1.0, max_step=0.04, tol=0.008, rot_tol=0.1),
            Waypoint(grasp, -1.0, max_step=0.015, tol=0.003, rot_tol=0.04),
            Waypoint(grasp, 1.0, tol=0.01, wait=5),
            Waypoint(above, 1.0, max_step=0.03, tol=0.01),
        ]

    def recovery_waypoints(self, env: TaskEnv, poses: dict[str, Pose]) -> list[Waypoint]:
        up = env.eef_pose()
        up[2, 3] = max(up[2, 3], env.body_pose(self.held)[2, 3]) + 0.04
        return [Waypoint(up, env.gripper_command, max_step=0.02, tol=0.006, rot_tol=0.2)]


def _yaw_of(rot: NDArray[np.float64]) -> float:
    """Yaw (about world z) of a rotation, from its x axis projected on the table."""
    return float(np.arctan2(rot[1, 0], rot[0, 0]))
