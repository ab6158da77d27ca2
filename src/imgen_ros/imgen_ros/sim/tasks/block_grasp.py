"""Block Grasp: reach a 5 cm cube on the table and grasp it top-down (then lift it).

Cube sampled in a 20 x 30 cm region (x 0.45..0.65, y -0.15..0.15) at a yaw uniform in [-45, 45) deg
(a cube is symmetric under 90 deg turns, so this covers every resting orientation; the observed
orientation is the canonical one, as the pose estimator reports it). Noise on the observed cube
position: +-1 cm in x, +-7 cm in y with |dy| >= 2.5 cm, so a naive top-down grasp lands a finger on
the cube (the fingers open along y) or closes on nothing.
Success: cube lifted >= 3 cm, held between both fingers with the gripper closed.
Mistake (TERMINATE-POLICY, from MuJoCo contacts): a finger presses on top of the cube, the hand
touches the table, or the gripper is closed with nothing between the fingers.
Observability: the channel opens when ``core.contact.ContactDetector`` fires on the simulated FR3
wrench estimate and gripper width (a finger pressing on the cube, or the fingers stopping on it),
the same detector the real graph's ``contact_detector`` node runs.
"""

from __future__ import annotations

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.contact import ContactDetectorConfig
from imgen_ros.sim.corruption import block_grasp_noise
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.model import add_box, add_free_body
from imgen_ros.sim.task import ContactChannel, Pose, SubtaskSpec, Task, Waypoint
from imgen_ros.sim.tasks.common import raised, set_free_pose, top_down, yaw_quat_wxyz

CUBE_HALF = 0.025
REGION_X = (0.45, 0.65)
REGION_Y = (-0.15, 0.15)
YAW_RANGE = (-np.pi / 4, np.pi / 4)  # rad; the cube's 90 deg symmetry makes this every resting yaw
LIFT_SUCCESS_Z = 0.03
NOT_BETWEEN_FINGERS = 0.018  # m; the open fingers clear the cube only below ~1.5 cm offset
EMPTY_GAP = 0.01  # finger gap below which a closed gripper holds nothing


def lateral_offset(env: TaskEnv, body: str) -> float:
    """|offset| of ``body``'s origin from the TCP along the finger axis (TCP y)."""
    tcp = env.eef_pose()
    return abs(float(tcp[:3, 1] @ (env.data.xpos[env.model.body(body).id] - tcp[:3, 3])))


def cube_grasp_yaw(rot: NDArray[np.float64]) -> float:
    """Gripper yaw (rad, in [-pi/4, pi/4]) that puts the fingers on two faces of a cube with rotation
    ``rot`` (any of its axes may point up: the cube may have been knocked over)."""
    up = int(np.argmax(np.abs(rot[2, :])))
    side = rot[:, (up + 1) % 3]
    yaw = float(np.arctan2(side[1], side[0]))
    return (yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4


class BlockGrasp(Task):
    name = "block_grasp"
    horizon = 400  # see Task.horizon: 2x+ the simulated operator's longest source intervention
    subtasks = (SubtaskSpec("cube", None),)
    object_names = ("cube",)
    channel = ContactChannel("fingers", "cube", revealed="cube", partial_cue="contact_position")
    contact_detector = ContactDetectorConfig()
    cube_objects = ("cube",)

    def build(self, spec: mujoco.MjSpec) -> None:
        body = add_free_body(spec, "cube", (0.55, 0.0, CUBE_HALF))
        add_box(body, "cube_geom", (CUBE_HALF,) * 3, rgba=(0.85, 0.12, 0.1, 1.0), mass=0.15,
                friction=[1.2, 0.01, 0.001], condim=4, solref=[0.005, 1.0], solimp=[0.95, 0.99, 0.001, 0.5, 2.0])

    def reset_scene(self, env: TaskEnv, rng: np.random.Generator) -> None:
        x = rng.uniform(*REGION_X)
        y = rng.uniform(*REGION_Y)
        yaw = rng.uniform(*YAW_RANGE)
        set_free_pose(env, "cube", np.array([x, y, CUBE_HALF]), yaw_quat_wxyz(yaw))

    def sample_corruption(self, rng: np.random.Generator) -> dict[str, NDArray[np.float64]]:
        return {"cube": block_grasp_noise(rng)}

    def _holding(self, env: TaskEnv) -> bool:
        d = env.data
        left = env.touching("left_finger", "cube")
        right = env.touching("right_finger", "cube")
        return left and right and env.gripper_command > 0 and d.ncon > 0

    def is_success(self, env: TaskEnv) -> bool:
        cube_z = env.data.xpos[env.model.body("cube").id][2]
        return bool(cube_z - CUBE_HALF > LIFT_SUCCESS_Z and self._holding(env))

    def mistake(self, env: TaskEnv) -> bool:
        if env.touching("hand", "table"):
            return True
        if env.touching("hand", "cube") and lateral_offset(env, "cube") > NOT_BETWEEN_FINGERS:
            return True
        return env.gripper_command > 0 and env.finger_width() < EMPTY_GAP

    def expert_waypoints(self, env: TaskEnv, subtask: int, poses: dict[str, Pose]) -> list[Waypoint]:
        c = poses["cube"][:3, 3]
        yaw = cube_grasp_yaw(poses["cube"][:3, :3])
        open_, closed = -1.0, 1.0
        return [
            Waypoint(top_down(raised(c, 0.10), yaw), open_, max_step=0.04, tol=0.01, rot_tol=0.1),
            Waypoint(top_down(raised(c, 0.03), yaw), open_, max_step=0.025, tol=0.004),
            Waypoint(top_down(raised(c, -0.005), yaw), open_, max_step=0.015, tol=0.004),
            Waypoint(top_down(raised(c, -0.005), yaw), closed, tol=0.01, wait=5),
            Waypoint(top_down(raised(c, 0.12), yaw), closed, max_step=0.03, tol=0.01),
        ]

    def recovery_waypoints(self, env: TaskEnv, poses: dict[str, Pose]) -> list[Waypoint]:
        up = env.eef_pose()
        up[:3, 3] += (0.0, 0.0, 0.05)
        return [Waypoint(up, -1.0, max_step=0.02, tol=0.01, rot_tol=0.2)]


TASK = BlockGrasp
