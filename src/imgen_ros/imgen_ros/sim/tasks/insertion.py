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

from imgen_ros.core.pose import make_pose, pose_inv
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.task import Pose, Task, Waypoint
from imgen_ros.sim.tasks.common import TOP_DOWN, place_in_hand, set_mocap_pose

REGION_X = (0.50, 0.60)
REGION_Y = (-0.05, 0.05)
MISALIGN_MARGIN = 0.002  # m beyond the success tolerance before a contact counts as a mistake
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

    def expert_waypoints(self, env: TaskEnv, subtask: int, poses: dict[str, Pose]) -> list[Waypoint]:
        t = poses[self.target][:3, 3]
        held_rot = env.body_pose(self.held)[:3, :3]
        # keep the held object's current tilt but align its yaw with the target's
        yaw_fix = poses[self.target][:3, :3] @ _yaw_only(held_rot).T
        rot = yaw_fix @ held_rot

        def at(z: float) -> Pose:
            return self._tcp_for(env, make_pose((t[0], t[1], z), rot))

        clear = self.target_top + self.held_bottom
        release = env.eef_pose()
        release_pose = at(self.inserted_z)
        release[:3, :] = release_pose[:3, :]
        lifted = release.copy()
        lifted[2, 3] += 0.08
        return [
            Waypoint(at(clear + 0.05), 1.0, max_step=0.04, tol=0.008, rot_tol=0.1),
            Waypoint(at(clear + 0.008), 1.0, max_step=0.02, tol=0.0015, rot_tol=0.03, wait=1),
            Waypoint(at(self.inserted_z), 1.0, max_step=0.01, tol=0.003),
            Waypoint(release, -1.0, tol=0.01, wait=3),
            Waypoint(lifted, -1.0, max_step=0.03, tol=0.01),
        ]

    def recovery_waypoints(self, env: TaskEnv, poses: dict[str, Pose]) -> list[Waypoint]:
        up = env.eef_pose()
        up[2, 3] = max(up[2, 3], env.body_pose(self.held)[2, 3] + 0.0) + 0.04
        return [Waypoint(up, 1.0, max_step=0.02, tol=0.006, rot_tol=0.2)]


def _yaw_only(rot: NDArray[np.float64]) -> NDArray[np.float64]:
    """The yaw part of a rotation (about world z), from its x axis projected on the table."""
    yaw = np.arctan2(rot[1, 0], rot[0, 0])
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
