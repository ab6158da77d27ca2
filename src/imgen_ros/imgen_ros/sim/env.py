"""``TaskEnv``: the FR3 scene + one task, stepped with normalized delta-pose actions at 20 Hz.

See ``imgen_ros.sim`` for the contract. The environment owns the physics, the controller, the pose
corruption of the episode and the contact-revealed observability channel; the task supplies
objects, sampling, checks and expert waypoints. Tasks with a ``contact_detector`` (Block Grasp)
also get the FR3's simulated wrench estimate (``sim.wrench``), sampled after every controller
interval (100 Hz), and open the channel when ``core.contact.ContactDetector`` fires on it, as the
real graph's ``contact_detector`` node does on ``robot_state``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import CONTROL_DT, DEFAULT_SCALE, ActionScale, action_to_delta, validate_action
from imgen_ros.core.contact import STATE_SIZE as DETECTOR_STATE_SIZE
from imgen_ros.core.contact import ContactDetector
from imgen_ros.core.pose import quat_on_hemisphere
from imgen_ros.core.symmetry import canonical_cube_rotation
from imgen_ros.sim.contacts import BodyGeoms, contact_positions, in_contact
from imgen_ros.sim.controller import PoseController
from imgen_ros.sim.model import FINGER_JOINTS, HOME_Q, load_fr3_spec
from imgen_ros.sim.task import Pose, Task
from imgen_ros.sim.wrench import STATE_SIZE as WRENCH_STATE_SIZE
from imgen_ros.sim.wrench import WrenchEstimate

OBSERVABILITY_MODES = ("full", "partial", "none")
SETTLE_SECONDS = 0.2


def mat_to_quat_xyzw(rot: NDArray) -> NDArray[np.float64]:
    """Rotation matrix -> (x, y, z, w) quaternion with w >= 0, by MuJoCo (the observation's hot path).
    It equals ``core.pose.matrix_to_quat_xyzw``, which the real graph uses and which also validates its
    input, to 1e-15, half turns included (tests/core/test_pose_conversions.py): one convention."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(rot, dtype=float).reshape(-1))
    if quat[0] < 0:
        quat = -quat
    return np.array([quat[1], quat[2], quat[3], quat[0]])


def action_target_pose(action: NDArray, current: Pose, scale: ActionScale) -> Pose:
    """``imgen_ros.core.action.action_to_target_pose`` computed with MuJoCo's quaternion routines
    (same result to ~1e-15, ~10x faster than scipy on this hot path; tested against it)."""
    dpos, drot, _ = action_to_delta(action, scale)
    angle = float(np.sqrt(drot @ drot))
    target = np.eye(4)
    target[:3, 3] = current[:3, 3] + dpos
    if angle < 1e-12:
        target[:3, :3] = current[:3, :3]
        return target
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, drot / angle, angle)
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, quat)
    target[:3, :3] = rot.reshape(3, 3) @ current[:3, :3]
    return target


class TaskEnv:
    """One task in the FR3 MuJoCo scene (see ``imgen_ros.sim`` for the full contract)."""

    def __init__(self, task: Task, *, observability: str = "full", render: bool = False,
                 scale: ActionScale = DEFAULT_SCALE,
                 scene_hooks: Sequence[Callable[[mujoco.MjSpec], None]] = ()) -> None:
        """``scene_hooks`` run on the spec after the task's ``build`` (e.g. add a camera)."""
        if observability not in OBSERVABILITY_MODES:
            raise ValueError(f"observability must be one of {list(OBSERVABILITY_MODES)}, got {observability!r}")
        self.task = task
        self.name = task.name
        self.horizon = task.horizon
        self.subtasks = list(task.subtasks)
        self.scale = scale
        self.observability = observability
        self.render_enabled = render

        spec = load_fr3_spec()
        task.build(spec)
        for hook in scene_hooks:
            hook(spec)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.n_substeps = round(CONTROL_DT / self.model.opt.timestep)
        self.controller = PoseController(self.model, self.data)
        self.tcp_site = self.controller.site_id
        self._arm_qpos = self.controller.qpos_ids
        self._finger_qpos = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in FINGER_JOINTS])
        self._body_ids = {n: self.model.body(n).id for n in task.object_names}
        self._geoms: dict[str, BodyGeoms] = {}
        self._state_sig = mujoco.mjtState.mjSTATE_INTEGRATION
        self._mj_state_size = mujoco.mj_stateSize(self.model, self._state_sig)
        self._renderer: mujoco.Renderer | None = None
        self._renderer_size: tuple[int, int] | None = None
        detector_config = task.contact_detector
        self.wrench = (WrenchEstimate(self.model, self.data, self.tcp_site, self._finger_qpos)
                       if detector_config is not None else None)
        self.detector = ContactDetector(detector_config) if detector_config is not None else None
        # one robot-state sample after each controller interval (100 Hz), turned into estimates per step
        self._on_chunk = self.wrench.record if self.wrench is not None else None
        self._canonical_cache: dict[str, tuple[bytes, NDArray[np.float64]]] = {}

        self.corruption: dict[str, NDArray[np.float64]] = {n: np.zeros(3) for n in task.object_names}
        self.step_count = 0
        self.revealed = False
        self.cue = np.zeros(7)
        self.cue_full = np.zeros(7)
        self.gripper_command = -1.0
        self.target_pose = np.eye(4)
        self.seed: int | None = None
        task.bind(self)

    # ---- geometry helpers used by tasks ---------------------------------------------------------
    def geoms(self, body: str) -> BodyGeoms:
        """Collision geoms of ``body`` and its descendants (cached)."""
        if body not in self._geoms:
            self._geoms[body] = BodyGeoms.of(self.model, body)
        return self._geoms[body]

    def touching(self, a: str, b: str) -> bool:
        """True when any collision geom of body ``a`` touches one of body ``b`` (or 'table', 'fingers')."""
        return in_contact(self.data, self.geoms(a), self.geoms(b))

    def body_pose(self, body: str) -> Pose:
        bid = self.model.body(body).id
        pose = np.eye(4)
        pose[:3, :3] = self.data.xmat[bid].reshape(3, 3)
        pose[:3, 3] = self.data.xpos[bid]
        return pose

    @property
    def finger_qpos_ids(self) -> NDArray[np.int_]:
        """qpos indices of the two finger joints (``_finger_qpos`` is the same, kept for callers)."""
        return self._finger_qpos

    def finger_width(self) -> float:
        """Distance between the fingers (m)."""
        return float(self.data.qpos[self._finger_qpos].sum())

    # ---- contract: state -----------------------------------------------------------------------
    def reset(self, seed: int) -> dict[str, NDArray[np.float64]]:
        """New scene and corruption sample, fully determined by ``seed``."""
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._arm_qpos] = HOME_Q
        d.ctrl[self.controller.arm_actuators] = HOME_Q
        d.qpos[self._finger_qpos] = 0.04
        self.set_gripper(-1.0)
        mujoco.mj_forward(m, d)
        self.task.reset_scene(self, rng)
        noise = self.task.sample_corruption(rng) if self.task.noise != "off" else {}
        self.corruption = {n: np.asarray(noise.get(n, np.zeros(3)), dtype=float) for n in self.task.object_names}
        mujoco.mj_step(m, d, round(SETTLE_SECONDS / m.opt.timestep))
        mujoco.mj_forward(m, d)
        d.time = 0.0
        if self.wrench is not None:
            self.wrench.reset(self.seed)
            self.detector.reset()
        self.step_count = 0
        self.revealed = False
        self.cue = np.zeros(7)
        self.cue_full = np.zeros(7)
        self.target_pose = self.eef_pose()
        return self.observation()

    def set_gripper(self, command: float) -> None:
        self.gripper_command = float(np.clip(command, -1.0, 1.0))
        self.controller.set_gripper(self.gripper_command)

    def step(self, action: NDArray) -> tuple[dict[str, NDArray[np.float64]], float, bool, dict[str, Any]]:
        a = validate_action(action)
        self.target_pose = action_target_pose(a, self.eef_pose(), self.scale)
        self.set_gripper(1.0 if a[6] > 0.0 else -1.0)
        self.controller.track(self.target_pose, self.n_substeps, on_chunk=self._on_chunk)
        mujoco.mj_forward(self.model, self.data)  # kinematics/contacts of the final state (restorable)
        if self.detector is not None:
            self._detect_contact()
        self.step_count += 1
        self._update_channel()
        success = self.is_success()
        mistake = self.mistake_detected()
        done = success or self.step_count >= self.horizon
        info = {"success": success, "mistake": mistake, "revealed": self.revealed}
        return self.observation(), 1.0 if success else 0.0, done, info

    def _detect_contact(self) -> None:
        """The step's robot-state samples, as the FR3 would report them, through the contact detector."""
        samples = self.wrench.flush()
        if not self.detector.detected:   # it latches: once fired, later samples change nothing it reports
            self.detector.update_batch(samples.stamps, samples.force, samples.tcp_z, samples.gripper_width)

    def external_wrench(self) -> NDArray[np.float64]:
        """The latest simulated FR3 wrench estimate (libfranka sign; NaN when this task has none)."""
        return self.wrench.last.copy() if self.wrench is not None else np.full(6, np.nan)

    def _update_channel(self) -> None:
        ch = self.task.channel
        if ch is None or self.revealed:
            return
        ga, gb = self.geoms(ch.body_a), self.geoms(ch.body_b)
        if self.detector is not None:
            if not self.detector.detected:
                return
        elif not in_contact(self.data, ga, gb):
            return
        self.revealed = True
        true_pose = self.body_pose(ch.revealed)
        if ch.partial_cue == "contact_position" and self.detector is not None:
            self.cue[:3] = self.eef_pose()[:3, 3]  # where the robot felt it: its TCP
        elif ch.partial_cue == "contact_position":
            self.cue[:3] = contact_positions(self.data, ga, gb).mean(axis=0)
        elif ch.partial_cue == "direction":
            delta = true_pose[:3, 3] - self.body_pose(ch.body_a)[:3, 3]
            delta[2] = 0.0
            norm = np.linalg.norm(delta)
            self.cue[:3] = delta / norm if norm > 1e-9 else 0.0
        else:
            raise ValueError(f"unknown partial cue {ch.partial_cue!r} in task {self.name!r}")
        true_pose = self._as_reported(ch.revealed, true_pose)
        self.cue_full = np.concatenate([true_pose[:3, 3], mat_to_quat_xyzw(true_pose[:3, :3])])

    def get_state(self) -> NDArray[np.float64]:
        """Flat state: MuJoCo integration state, then env extras (step, gripper, reveal, cue, corruption,
        and with a contact detector the wrench estimate's and the detector's states)."""
        mj = np.empty(self._mj_state_size)
        mujoco.mj_getState(self.model, self.data, mj, self._state_sig)
        extras = [np.array([self.step_count, self.gripper_command, float(self.revealed)]), self.cue,
                  self._cue_full_or_zero(), self.target_pose[:3, :].reshape(-1)]
        extras += [self.corruption[n] for n in self.task.object_names]
        if self.wrench is not None:
            extras += [self.wrench.state_array(), self.detector.state_array()]
        return np.concatenate([mj, *extras])

    def set_state(self, state: NDArray) -> None:
        state = np.asarray(state, dtype=float)
        detector_size = WRENCH_STATE_SIZE + DETECTOR_STATE_SIZE if self.wrench is not None else 0
        expected = self._mj_state_size + 3 + 7 + 7 + 12 + 3 * len(self.task.object_names) + detector_size
        if state.shape != (expected,):
            raise ValueError(f"state for task {self.name!r} must have shape ({expected},), got {state.shape}")
        n = self._mj_state_size
        mujoco.mj_setState(self.model, self.data, state[:n], self._state_sig)
        mujoco.mj_forward(self.model, self.data)
        self.step_count = int(state[n])
        self.gripper_command = float(state[n + 1])
        self.revealed = bool(state[n + 2] > 0.5)
        self.cue = state[n + 3:n + 10].copy()
        self.cue_full = state[n + 10:n + 17].copy()
        self.target_pose = np.eye(4)
        self.target_pose[:3, :] = state[n + 17:n + 29].reshape(3, 4)
        offset = n + 29
        for name in self.task.object_names:
            self.corruption[name] = state[offset:offset + 3].copy()
            offset += 3
        if self.wrench is not None:
            self.wrench.load_state_array(state[offset:offset + WRENCH_STATE_SIZE])
            self.detector.load_state_array(state[offset + WRENCH_STATE_SIZE:])

    def _cue_full_or_zero(self) -> NDArray[np.float64]:
        return self.cue_full if self.revealed else np.zeros(7)

    # ---- contract: observations ----------------------------------------------------------------
    def eef_pose(self) -> Pose:
        pose = np.eye(4)
        pose[:3, :3] = self.data.site_xmat[self.tcp_site].reshape(3, 3)
        pose[:3, 3] = self.data.site_xpos[self.tcp_site]
        return pose

    def object_poses(self, observed: bool = False) -> dict[str, Pose]:
        """True object poses, or the believed ones (true position + this episode's corruption). Cube
        objects carry their canonical orientation in both, as the pose estimator reports it: a cube's
        orientation is only defined up to its symmetries (a tipped-over cube is a cube with z up), so
        MimicGen's object frames stay upright (``body_pose`` is the raw physics frame)."""
        poses = {}
        for name in self.task.object_names:
            pose = self._as_reported(name, self.body_pose(name))
            if observed:
                pose[:3, 3] += self.corruption[name]
            poses[name] = pose
        return poses

    def _as_reported(self, name: str, pose: Pose) -> Pose:
        """``pose`` of object ``name`` as a pose estimate reports it: cube objects canonicalized."""
        if name in self.task.cube_objects:
            key = pose[:3, :3].tobytes()
            cached = self._canonical_cache.get(name)
            if cached is None or cached[0] != key:   # the cube moved (asked several times per step)
                cached = (key, canonical_cube_rotation(pose[:3, :3]))
                self._canonical_cache[name] = cached
            pose[:3, :3] = cached[1]
        return pose

    def channel_vector(self) -> NDArray[np.float64]:
        """Observability channel: revealed info (full: pos+quat 7, partial: cue 3, none: -) + flag."""
        flag = np.array([1.0 if self.revealed and self.observability != "none" else 0.0])
        if self.observability == "full":
            return np.concatenate([self._cue_full_or_zero(), flag])
        if self.observability == "partial":
            return np.concatenate([self.cue[:3] if self.revealed else np.zeros(3), flag])
        return flag

    def corrected_object(self) -> str | None:
        """The object whose observed pose is the true one now: under full observability, the
        channel's object once contact revealed it (the corruption ends there); else None."""
        ch = self.task.channel
        if ch is None or not self.revealed or self.observability != "full":
            return None
        return ch.revealed

    def believed_poses(self) -> dict[str, Pose]:
        """The object poses the policy observes: the believed ones (:meth:`object_poses` ``observed``), but
        the true pose of the object that contact revealed under full observability (its corruption ends)."""
        poses = self.object_poses(observed=True)
        corrected = self.corrected_object()
        if corrected is not None:
            poses[corrected] = self._as_reported(corrected, self.body_pose(corrected))
        return poses

    def finger_qpos(self) -> NDArray[np.float64]:
        """Finger joint positions (robomimic ``robot0_gripper_qpos``), without the rest of the observation."""
        return self.data.qpos[self._finger_qpos].copy()

    def observation(self) -> dict[str, NDArray[np.float64]]:
        eef = self.eef_pose()
        parts = []
        for pose in self.believed_poses().values():
            parts.append(pose[:3, 3])
            parts.append(mat_to_quat_xyzw(pose[:3, :3]))
        parts.append(self.channel_vector())
        return {
            "robot0_eef_pos": eef[:3, 3].copy(),
            "robot0_eef_quat": quat_on_hemisphere(mat_to_quat_xyzw(eef[:3, :3])),
            "robot0_gripper_qpos": self.finger_qpos(),
            "object": np.concatenate(parts),
        }

    def is_success(self) -> bool:
        return bool(self.task.is_success(self))

    def mistake_detected(self) -> bool:
        return bool(self.task.mistake(self))

    def term_signals(self) -> dict[str, bool]:
        return self.task.term_signals(self)

    def datagen_info(self, action: NDArray | None = None) -> dict[str, NDArray[np.float64]]:
        """MimicGen per-step info. With ``action`` (about to be applied) the target pose and gripper
        action are that action's; without, those of the last applied action."""
        eef = self.eef_pose()
        if action is not None:
            a = validate_action(action)
            target = action_target_pose(a, eef, self.scale)
            grip = 1.0 if a[6] > 0 else -1.0
        else:
            target, grip = self.target_pose.copy(), self.gripper_command
        info: dict[str, NDArray[np.float64]] = {"eef_pose": eef, "target_pose": target,
                                                "gripper_action": np.array([grip])}
        for name, pose in self.object_poses().items():
            info[f"object_poses/{name}"] = pose
        for name, pose in self.object_poses(observed=True).items():
            info[f"observed_object_poses/{name}"] = pose
        for name, value in self.term_signals().items():
            info[f"subtask_term_signals/{name}"] = np.array(1.0 if value else 0.0)
        return info

    def env_args(self) -> dict[str, Any]:
        return {"env_name": self.name, "type": "imgen_sim",
                "env_kwargs": {"task": self.name, "noise": self.task.noise, "observability": self.observability,
                               "control_hz": 1.0 / CONTROL_DT,
                               "scale": {"translation_m": self.scale.translation_m,
                                         "rotation_rad": self.scale.rotation_rad}}}

    # ---- rendering -----------------------------------------------------------------------------
    def render(self, camera: str = "agentview", width: int = 256, height: int = 256) -> NDArray[np.uint8]:
        if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            cams = [self.model.camera(i).name for i in range(self.model.ncam)]
            raise ValueError(f"camera {camera!r} not in the scene; available: {cams}")
        if self._renderer is None or self._renderer_size != (width, height):
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = mujoco.Renderer(self.model, height=height, width=width)
            self._renderer_size = (width, height)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
