"""Nut-and-Peg Assembly: grasp a square nut by its handle, then place it over a fixed square peg.

The nut (a square ring with a handle) is sampled in a 0.5 x 11.5 cm region (x 0.45..0.455,
y 0.04..0.155) with a uniform random top-down rotation; the peg is fixed at (0.58, -0.12).

Geometry error (the paper's observation error for this task): for the same observed nut pose the
handle may stick out on either side of the ring. Geometry 1 (the model a pose estimator would
assume) has the handle along the nut's +x axis, Geometry 2 along -x. The handle is a child body on
a slide joint held at +-``HANDLE_OFFSET`` by one of two joint equality constraints; which one is
active is MuJoCo state (``eq_active``), so ``get_state`` / ``set_state`` restore the geometry.
The observed poses are the nut ring's (always true) and the handle's *as Geometry 1 predicts it*
(the true handle pose plus a position offset of 2 * HANDLE_OFFSET in Geometry 2), so both
geometries give identical observations. ``noise="off"``: Geometry 1; ``"on"``: Geometry 2 always;
``"mixture"``: 50/50 per episode.

Subtasks: grasp the nut (ends when both fingers hold it with the gripper closed), then place it
over the peg (success: the ring's centre within 1 cm of the peg axis and at least 3 cm below the
peg's top, i.e. around the peg). Mistake: a missed grasp (gripper closed on nothing). No
observability channel: a closed, empty gripper is the cue.
"""

from __future__ import annotations

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import make_pose, pose_inv, yaw_matrix
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.model import add_box, add_free_body
from imgen_ros.sim.task import Pose, SubtaskSpec, Task, Waypoint
from imgen_ros.sim.tasks.common import set_free_pose, top_down, yaw_quat_wxyz

REGION_X = (0.45, 0.455)
REGION_Y = (0.04, 0.155)
PEG_POS = np.array([0.58, -0.12, 0.0])
PEG_HALF = 0.011
PEG_HEIGHT = 0.08

RING_INNER_HALF = 0.018
RING_WALL = 0.01
RING_OUTER_HALF = RING_INNER_HALF + RING_WALL
NUT_HALF_HEIGHT = 0.008
HANDLE_HALF = (0.03, 0.011, NUT_HALF_HEIGHT)
HANDLE_OFFSET = RING_OUTER_HALF + HANDLE_HALF[0]  # handle centre from the ring centre
GEOMETRIES = {1: HANDLE_OFFSET, 2: -HANDLE_OFFSET}

GRASP_TCP_ABOVE_CENTRE = 0.006  # TCP above the handle's centre when grasping (fingertips clear the table)
EMPTY_GAP = 0.006  # finger gap below which a closed gripper holds nothing
SUCCESS_XY = 0.01
SUCCESS_BELOW_TOP = 0.03


def nut_yaw(pose: Pose) -> float:
    return float(np.arctan2(pose[1, 0], pose[0, 0]))


def wrap_angle(angle: float, period: float = 2.0 * np.pi) -> float:
    """``angle`` wrapped to [-period/2, period/2)."""
    return float((angle + period / 2.0) % period - period / 2.0)


def raised(position: NDArray, dz: float) -> NDArray[np.float64]:
    """``position`` moved up by ``dz`` (m)."""
    return np.asarray(position, dtype=float) + np.array([0.0, 0.0, dz])


class NutPegAssembly(Task):
    name = "nut_peg_assembly"
    horizon = 550  # see Task.horizon: 2x+ the simulated operator's longest source intervention (~270 steps)
    subtasks = (SubtaskSpec("nut", "nut_grasped"), SubtaskSpec("peg", None))
    object_names = ("nut", "nut_handle", "peg")
    channel = None
    noise_modes = ("off", "on", "mixture")

    def __init__(self, noise: str) -> None:
        super().__init__(noise)
        self._sampled_geometry = 1  # between reset_scene and sample_corruption only; see true_geometry()
        self._yaw = 0.0

    # ---- scene ---------------------------------------------------------------------------------
    def build(self, spec: mujoco.MjSpec) -> None:
        nut = add_free_body(spec, "nut", (0.45, 0.1, NUT_HALF_HEIGHT))
        rgba = (0.75, 0.6, 0.15, 1.0)
        wall_mid = RING_INNER_HALF + RING_WALL / 2.0
        common = {"mass": 0.012, "friction": [1.0, 0.01, 0.001], "condim": 4}
        for sign, tag in ((1, "px"), (-1, "nx")):
            add_box(nut, f"nut_wall_{tag}", (RING_WALL / 2.0, RING_OUTER_HALF, NUT_HALF_HEIGHT),
                    pos=(sign * wall_mid, 0.0, 0.0), rgba=rgba, **common)
        for sign, tag in ((1, "py"), (-1, "ny")):
            add_box(nut, f"nut_wall_{tag}", (RING_INNER_HALF, RING_WALL / 2.0, NUT_HALF_HEIGHT),
                    pos=(0.0, sign * wall_mid, 0.0), rgba=rgba, **common)
        handle = nut.add_body(name="nut_handle")
        handle.add_joint(name="nut_handle_slide", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0],
                         range=[-0.1, 0.1], limited=mujoco.mjtLimited.mjLIMITED_TRUE, damping=2.0, armature=0.01)
        # stiff contacts (solref dominates the pair via solmix): the fast-closing fingers must not sink in
        add_box(handle, "nut_handle_geom", HANDLE_HALF, rgba=(0.6, 0.45, 0.1, 1.0), mass=0.015,
                friction=[1.3, 0.02, 0.001], condim=4, solref=[0.004, 1.0], solimp=[0.95, 0.99, 0.001, 0.5, 2.0],
                solmix=100.0)
        for geometry, offset in GEOMETRIES.items():
            data = np.zeros(12)
            data[0] = offset  # slide = polycoef[0] (its reference position is 0)
            spec.add_equality(name=f"nut_geometry_{geometry}", type=mujoco.mjtEq.mjEQ_JOINT,
                              objtype=mujoco.mjtObj.mjOBJ_JOINT, name1="nut_handle_slide", data=data,
                              solref=[0.004, 1.0], active=geometry == 1)
        peg = spec.worldbody.add_body(name="peg", pos=PEG_POS.tolist())
        add_box(peg, "peg_geom", (PEG_HALF, PEG_HALF, PEG_HEIGHT / 2.0), pos=(0.0, 0.0, PEG_HEIGHT / 2.0),
                rgba=(0.35, 0.35, 0.4, 1.0), friction=[0.5, 0.005, 0.0001])

    def bind(self, env: TaskEnv) -> None:
        self._eq_ids = {g: env.model.equality(f"nut_geometry_{g}").id for g in GEOMETRIES}
        self._slide_qpos = env.model.jnt_qposadr[env.model.joint("nut_handle_slide").id]

    def reset_scene(self, env: TaskEnv, rng: np.random.Generator) -> None:
        x, y = rng.uniform(*REGION_X), rng.uniform(*REGION_Y)
        self._yaw = float(rng.uniform(0.0, 2.0 * np.pi))
        if self.noise == "mixture":
            self._sampled_geometry = 2 if rng.random() < 0.5 else 1
        else:
            self._sampled_geometry = 2 if self.noise == "on" else 1
        set_free_pose(env, "nut", np.array([x, y, NUT_HALF_HEIGHT]), yaw_quat_wxyz(self._yaw))
        for geometry, eq_id in self._eq_ids.items():
            env.data.eq_active[eq_id] = 1 if geometry == self._sampled_geometry else 0
        env.data.qpos[self._slide_qpos] = GEOMETRIES[self._sampled_geometry]

    def sample_corruption(self, rng: np.random.Generator) -> dict[str, NDArray[np.float64]]:
        """The handle is observed where Geometry 1 puts it (offset 0 in Geometry 1)."""
        believed_minus_true = GEOMETRIES[1] - GEOMETRIES[self._sampled_geometry]
        return {"nut_handle": yaw_matrix(self._yaw) @ np.array([believed_minus_true, 0.0, 0.0])}

    def true_geometry(self, env: TaskEnv) -> int:
        """The active geometry read from the MuJoCo state (valid after ``set_state`` too)."""
        return next(g for g, eq_id in self._eq_ids.items() if env.data.eq_active[eq_id])

    # ---- checks --------------------------------------------------------------------------------
    def _grasped(self, env: TaskEnv) -> bool:
        return (env.gripper_command > 0 and env.finger_width() > EMPTY_GAP
                and env.touching("left_finger", "nut") and env.touching("right_finger", "nut"))

    def term_signals(self, env: TaskEnv) -> dict[str, bool]:
        return {"nut_grasped": self._grasped(env)}

    def is_success(self, env: TaskEnv) -> bool:
        nut = env.body_pose("nut")[:3, 3]
        radial = float(np.hypot(*(nut[:2] - PEG_POS[:2])))
        return bool(radial < SUCCESS_XY and nut[2] < PEG_POS[2] + PEG_HEIGHT - SUCCESS_BELOW_TOP)

    def mistake(self, env: TaskEnv) -> bool:
        """Missed grasp: the gripper is closed with nothing between the fingers."""
        return env.gripper_command > 0 and env.finger_width() < EMPTY_GAP

    # ---- scripted expert -----------------------------------------------------------------------
    def expert_waypoints(self, env: TaskEnv, subtask: int, poses: dict[str, Pose]) -> list[Waypoint]:
        if subtask == 0:
            return self._grasp_waypoints(poses["nut_handle"])
        return self._place_waypoints(env, poses["nut"], poses["peg"])

    def _grasp_waypoints(self, handle: Pose) -> list[Waypoint]:
        # fingers close across the handle (along the nut's y axis): grasp yaw = nut yaw, mod pi
        yaw = wrap_angle(nut_yaw(handle), np.pi)
        grasp = raised(handle[:3, 3], GRASP_TCP_ABOVE_CENTRE)
        open_, closed = -1.0, 1.0
        return [
            Waypoint(top_down(raised(grasp, 0.10), yaw), open_, max_step=0.04, tol=0.01, rot_tol=0.1),
            Waypoint(top_down(raised(grasp, 0.03), yaw), open_, max_step=0.025, tol=0.004, rot_tol=0.04),
            Waypoint(top_down(grasp, yaw), open_, max_step=0.015, tol=0.003),
            Waypoint(top_down(grasp, yaw), closed, tol=0.01, wait=6),
            Waypoint(top_down(raised(grasp, 0.10), yaw), closed, max_step=0.03, tol=0.01),
        ]

    def _place_waypoints(self, env: TaskEnv, nut: Pose, peg: Pose) -> list[Waypoint]:
        eef = env.eef_pose()
        nut_in_tcp = pose_inv(eef) @ nut
        # align the square ring with the square peg: the nearest yaw that is a multiple of 90 deg
        peg_yaw = nut_yaw(peg)
        target_yaw = peg_yaw + round((nut_yaw(nut) - peg_yaw) / (np.pi / 2.0)) * (np.pi / 2.0)
        top = raised(peg[:3, 3], PEG_HEIGHT)

        def tcp_for_nut_at(position: NDArray) -> Pose:
            return make_pose(position, yaw_matrix(target_yaw)) @ pose_inv(nut_in_tcp)

        lift = eef.copy()
        lift[2, 3] = max(lift[2, 3], top[2] + 0.09)
        closed, open_ = 1.0, -1.0
        return [
            Waypoint(lift, closed, max_step=0.03, tol=0.015, rot_tol=0.3),
            Waypoint(tcp_for_nut_at(raised(top, 0.05)), closed, max_step=0.04, tol=0.01, rot_tol=0.08),
            Waypoint(tcp_for_nut_at(raised(top, 0.02)), closed, max_step=0.015, tol=0.002, rot_tol=0.02),
            Waypoint(tcp_for_nut_at(raised(top, 0.025 - PEG_HEIGHT)), closed, max_step=0.01, tol=0.004),
            Waypoint(tcp_for_nut_at(raised(top, 0.025 - PEG_HEIGHT)), open_, tol=0.01, wait=4),
        ]

    def recovery_waypoints(self, env: TaskEnv, poses: dict[str, Pose]) -> list[Waypoint]:
        """After a missed grasp: back off 5 cm straight up and move over the handle's true position with
        the gripper still closed; the regrasp (``expert_waypoints``) opens it there.

        The closed, empty gripper is the only observation that tells a missed grasp from a first
        approach (the paper's Assumption 4), so the relocation keeps it. Opening first, as this recovery
        did, made ~75 steps of every recovery look like a first approach heading to the other side:
        I-MG trained on them missed Geometry 1's grasp in 38 of 50 trials (docs/learning.md)."""
        up = env.eef_pose()
        up[:3, 3] += (0.0, 0.0, 0.05)
        handle = poses["nut_handle"]
        above = top_down(raised(raised(handle[:3, 3], GRASP_TCP_ABOVE_CENTRE), 0.10),
                         wrap_angle(nut_yaw(handle), np.pi))
        closed = 1.0
        return [Waypoint(up, closed, max_step=0.02, tol=0.01, rot_tol=0.2),
                Waypoint(above, closed, max_step=0.04, tol=0.01, rot_tol=0.1)]


TASK = NutPegAssembly
