"""Coffee: put the coffee pod held in the hand into the machine's narrow pod holder and release it.

The machine (a mocap body: base plate, column with a head, and a cup-shaped pod holder on an arm)
is sampled in a 10 x 10 cm region to the robot's left (x 0.48..0.58, y 0.08..0.18), yaw fixed.
The pod (a 4 cm cylinder, 2 cm radius) starts held top-down in the closed gripper. The holder's
bore is 2.3 cm in radius (3 mm clearance), 1.4 cm deep. Noise: the observed machine position is
off by a radial 2-4 cm (``corruption.radial_noise``), so the naive insertion lands the pod on the
holder's rim.
Success: the pod is seated (its axis within 5 mm of the bore's, its bottom within 6 mm of the
holder floor) and released (gripper open, no finger touching it).
Mistake: the pod touches the machine while its axis is more than 6 mm from the bore's (it hit the
rim or the machine away from the opening).
Observability: contact between the pod and the holder reveals the machine's true pose.
"""

from __future__ import annotations

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.pose import make_pose
from imgen_ros.sim.corruption import radial_noise
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.model import add_box, add_free_body
from imgen_ros.sim.task import ContactChannel, Pose, SubtaskSpec, Task, Waypoint
from imgen_ros.sim.tasks.common import add_mocap_body, place_in_hand, set_mocap_pose, top_down

REGION_X = (0.48, 0.58)
REGION_Y = (0.08, 0.18)
NOISE_RADIUS = (0.02, 0.04)

POD_RADIUS = 0.02
POD_HALF_HEIGHT = 0.02
POD_BELOW_TCP = 0.012  # pod centre below the TCP when held (fingers on its upper half)

BORE_RADIUS = 0.023
WALL = 0.004
WALL_SEGMENTS = 16
HOLDER_DEPTH = 0.014
FLOOR_HALF = 0.002
# holder frame = centre of the holder floor's top surface, in the machine frame
HOLDER_IN_MACHINE = np.array([0.0, 0.0, 0.09])

SEATED_XY_TOL = 0.005
SEATED_Z_TOL = 0.006
MISTAKE_XY = 0.006


def holder_pose(machine: Pose) -> Pose:
    """Pose of the holder frame (floor centre, top surface) for a machine pose."""
    return machine @ make_pose(HOLDER_IN_MACHINE)


def _add_holder(machine: mujoco.MjsBody) -> None:
    holder = machine.add_body(name="pod_holder", pos=HOLDER_IN_MACHINE.tolist())
    rgba = (0.25, 0.25, 0.28, 1.0)
    holder.add_geom(name="holder_floor", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                    size=[BORE_RADIUS + WALL, FLOOR_HALF, 0.0], pos=[0.0, 0.0, -FLOOR_HALF], rgba=list(rgba))
    # the cup wall: tangent boxes around the bore (a polygon whose inscribed radius is the bore's)
    r_mid = BORE_RADIUS + WALL / 2.0
    half_len = (BORE_RADIUS + WALL) * np.tan(np.pi / WALL_SEGMENTS) + 0.0005
    for i in range(WALL_SEGMENTS):
        angle = 2.0 * np.pi * i / WALL_SEGMENTS
        quat = np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])
        holder.add_geom(name=f"holder_wall{i}", type=mujoco.mjtGeom.mjGEOM_BOX,
                        size=[WALL / 2.0, half_len, HOLDER_DEPTH / 2.0],
                        pos=[r_mid * np.cos(angle), r_mid * np.sin(angle), HOLDER_DEPTH / 2.0],
                        quat=quat.tolist(), rgba=list(rgba))
    # the arm carrying the cup back to the column
    add_box(holder, "holder_arm", (0.045, 0.012, 0.006), pos=(0.07, 0.0, -0.008), rgba=rgba)


def raised(position: NDArray, dz: float) -> NDArray[np.float64]:
    """``position`` moved up by ``dz`` (m)."""
    return np.asarray(position, dtype=float) + np.array([0.0, 0.0, dz])


class Coffee(Task):
    name = "coffee"
    horizon = 400  # see Task.horizon: 2x+ the simulated operator's longest source intervention
    subtasks = (SubtaskSpec("coffee_machine", None),)
    object_names = ("coffee_machine", "pod")
    channel = ContactChannel("pod", "pod_holder", revealed="coffee_machine", partial_cue="contact_position")

    def build(self, spec: mujoco.MjSpec) -> None:
        machine = add_mocap_body(spec, "coffee_machine", (0.53, 0.0, 0.0))
        body_rgba = (0.55, 0.1, 0.1, 1.0)
        add_box(machine, "machine_base", (0.09, 0.07, 0.006), pos=(0.05, 0.0, 0.006), rgba=(0.2, 0.2, 0.2, 1.0))
        add_box(machine, "machine_column", (0.03, 0.06, 0.11), pos=(0.14, 0.0, 0.11), rgba=body_rgba)
        add_box(machine, "machine_head", (0.05, 0.06, 0.02), pos=(0.12, 0.0, 0.2), rgba=body_rgba)
        _add_holder(machine)
        pod = add_free_body(spec, "pod", (0.4, 0.0, 0.2))
        pod.add_geom(name="pod_geom", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[POD_RADIUS, POD_HALF_HEIGHT, 0.0],
                     rgba=[0.85, 0.65, 0.2, 1.0], mass=0.03, friction=[1.2, 0.01, 0.001], condim=4)

    def reset_scene(self, env: TaskEnv, rng: np.random.Generator) -> None:
        pos = np.array([rng.uniform(*REGION_X), rng.uniform(*REGION_Y), 0.0])
        set_mocap_pose(env, "coffee_machine", pos, np.array([1.0, 0.0, 0.0, 0.0]))
        place_in_hand(env, "pod", make_pose((0.0, 0.0, POD_BELOW_TCP), np.diag([1.0, -1.0, -1.0])),
                      finger_gap=2.0 * POD_RADIUS)

    def sample_corruption(self, rng: np.random.Generator) -> dict[str, NDArray[np.float64]]:
        return {"coffee_machine": radial_noise(rng, *NOISE_RADIUS)}

    # ---- checks --------------------------------------------------------------------------------
    def _pod_offset(self, env: TaskEnv) -> tuple[float, float]:
        """(radial distance of the pod axis from the bore axis, pod bottom height above the floor)."""
        holder = holder_pose(env.body_pose("coffee_machine"))
        pod = env.body_pose("pod")
        rel = pod[:3, 3] - holder[:3, 3]
        bottom = rel[2] - POD_HALF_HEIGHT * abs(pod[2, 2])
        return float(np.hypot(rel[0], rel[1])), float(bottom)

    def is_success(self, env: TaskEnv) -> bool:
        radial, bottom = self._pod_offset(env)
        seated = radial < SEATED_XY_TOL and abs(bottom) < SEATED_Z_TOL
        released = env.gripper_command < 0 and not env.touching("fingers", "pod")
        return bool(seated and released)

    def mistake(self, env: TaskEnv) -> bool:
        if not env.touching("pod", "coffee_machine"):
            return False
        radial, _ = self._pod_offset(env)
        return radial > MISTAKE_XY

    # ---- scripted expert -----------------------------------------------------------------------
    def expert_waypoints(self, env: TaskEnv, subtask: int, poses: dict[str, Pose]) -> list[Waypoint]:
        bore = holder_pose(poses["coffee_machine"])[:3, 3]
        # TCP height that puts the pod's bottom on the holder floor
        seated = raised(bore, POD_BELOW_TCP + POD_HALF_HEIGHT)
        closed, open_ = 1.0, -1.0
        return [
            Waypoint(top_down(raised(seated, 0.08)), closed, max_step=0.04, tol=0.01, rot_tol=0.1),
            Waypoint(top_down(raised(seated, 0.03)), closed, max_step=0.02, tol=0.0015, rot_tol=0.03),
            Waypoint(top_down(raised(seated, 0.002)), closed, max_step=0.008, tol=0.003),
            Waypoint(top_down(raised(seated, 0.002)), open_, tol=0.01, wait=4),
            Waypoint(top_down(raised(seated, 0.07)), open_, max_step=0.02, tol=0.01),
        ]

    def recovery_waypoints(self, env: TaskEnv, poses: dict[str, Pose]) -> list[Waypoint]:
        """Lift the pod (still held) 5 cm straight up, away from the rim."""
        up = env.eef_pose()
        up[:3, 3] += (0.0, 0.0, 0.05)
        return [Waypoint(up, 1.0, max_step=0.02, tol=0.01, rot_tol=0.2)]


TASK = Coffee
