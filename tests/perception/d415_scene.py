"""A minimal MuJoCo scene for perception tests: a table, a 5 cm cube (free joint), an optional
distractor box, and the simulated D415 (imgen_ros.sim.cameras) on its default tripod mount."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import mujoco
import numpy as np
from imgen_ros.core.pose import Pose
from imgen_ros.perception.estimator import CubePoseEstimatorConfig
from imgen_ros.perception.gripper_filter import GripperState
from imgen_ros.sim.cameras import D415Config, D415DepthCamera, DepthFrame, DepthNoiseConfig, add_d415_to_spec
from imgen_ros.sim.expert import ScriptedExpert
from scipy.spatial.transform import Rotation

CUBE_HALF = 0.025
PARKED = np.array([2.0, 2.0, -1.0])  # far outside the camera view


@dataclass
class D415Scene:
    model: mujoco.MjModel
    data: mujoco.MjData
    camera: D415DepthCamera

    def place(self, body: str, position: np.ndarray, rotation: np.ndarray | None = None) -> None:
        joint = self.model.body(body).jntadr[0]
        adr = self.model.jnt_qposadr[joint]
        rot = Rotation.identity() if rotation is None else Rotation.from_matrix(rotation)
        self.data.qpos[adr:adr + 3] = position
        self.data.qpos[adr + 3:adr + 7] = rot.as_quat(scalar_first=True)
        mujoco.mj_forward(self.model, self.data)

    def place_cube(self, x: float, y: float, yaw: float, z: float = CUBE_HALF) -> Pose:
        """Put the cube at (x, y, z) with yaw about base z; returns its true pose."""
        rot = Rotation.from_euler("z", yaw).as_matrix()
        self.place("cube", np.array([x, y, z]), rot)
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = rot, (x, y, z)
        return pose

    def capture(self) -> DepthFrame:
        return self.camera.capture(self.data)

    def estimator_config(self, **overrides: object) -> CubePoseEstimatorConfig:
        """The default config with the scene's true extrinsics."""
        return replace(CubePoseEstimatorConfig().with_camera_pose(self.camera.pose_in_base(self.data)), **overrides)


def build_scene(noise: bool, seed: int = 0) -> D415Scene:
    spec = mujoco.MjSpec()
    table = spec.worldbody.add_geom()
    table.type = mujoco.mjtGeom.mjGEOM_BOX
    table.size = [0.6, 0.6, 0.02]
    table.pos = [0.5, 0.0, -0.02]
    for name, half in (("cube", CUBE_HALF), ("distractor", 0.045)):
        body = spec.worldbody.add_body()
        body.name = name
        body.add_freejoint()
        geom = body.add_geom()
        geom.type = mujoco.mjtGeom.mjGEOM_BOX
        geom.size = [half] * 3
    config = D415Config(noise=DepthNoiseConfig(enabled=noise))
    add_d415_to_spec(spec, config)
    model = spec.compile()
    data = mujoco.MjData(model)
    scene = D415Scene(model, data, D415DepthCamera(model, config, seed=seed))
    scene.place("distractor", PARKED)
    scene.place_cube(0.5, 0.0, 0.0)
    return scene


@contextmanager
def block_grasp_world(seed: int) -> Iterator[tuple[Any, D415DepthCamera, ScriptedExpert]]:
    """The Block Grasp world (FR3 and cube) reset to scene ``seed``, a noisy D415 in it, and the scripted
    expert acting on true poses."""
    from imgen_ros.graph.sim_world import make_world

    env = make_world("block_grasp", "off", "full", with_d415=True)
    camera = D415DepthCamera(env.model, D415Config(noise=DepthNoiseConfig(enabled=True)), seed=0)
    try:
        env.reset(seed)
        yield env, camera, ScriptedExpert(env, use_true_poses=True)
    finally:
        camera.close()
        env.close()


def _snapshot(env: Any, camera: D415DepthCamera) -> tuple[Pose, DepthFrame, GripperState]:
    """(true cube pose, one depth frame, the hand's state) now."""
    return env.body_pose("cube"), camera.capture(env.data), GripperState(env.eef_pose(), env.finger_width(), 0.0)


def grasp_frame(seed: int = 3) -> tuple[Pose, DepthFrame, GripperState]:
    """The fingers closed on the cube by the scripted expert: (cube pose, frame, hand)."""
    with block_grasp_world(seed) as (env, camera, expert):
        for _ in range(200):
            env.step(expert.act())
            if env.touching("cube", "fingers") and env.finger_width() < 0.055:
                break
        if not env.touching("cube", "fingers"):
            raise AssertionError("the expert never closed the fingers on the cube")
        return _snapshot(env, camera)


def open_hand_on_cube_frame(seed: int) -> tuple[Pose, DepthFrame, GripperState]:
    """The open hand lowered around the cube until its palm nears the top face (TCP 8 mm below the
    expert's grasp height): the view in which the hand hides the cube's top face and its self-filter
    cuts the top millimetres off. (cube pose, frame, hand)."""
    with block_grasp_world(seed) as (env, camera, expert):
        for _ in range(200):
            action = expert.act()
            if action[6] > 0:   # the expert would close here: the fingers straddle the cube
                break
            env.step(action)
        else:
            raise AssertionError("the expert never reached the grasp")
        lower = np.zeros(7)
        lower[2], lower[6] = -0.004 / env.scale.translation_m, -1.0   # 4 mm down per step, gripper open
        for _ in range(2):
            env.step(lower)
        return _snapshot(env, camera)
