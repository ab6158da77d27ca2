"""The simulated world behind sim_node: a TaskEnv (optionally with the simulated D415 in the scene)
and the messages' contents it provides (ROS-free)."""

from __future__ import annotations

import importlib

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.observation import ObjectEstimate
from imgen_ros.sim import TASK_NAMES, TaskEnv
from imgen_ros.sim.cameras import D415Config, D415DepthCamera, add_d415_to_spec


def make_world(task: str, noise: str, observability: str, with_d415: bool,
               d415: D415Config | None = None) -> tuple[TaskEnv, D415DepthCamera | None]:
    """``make_env`` plus, when asked, the D415 mounted in the scene (added in the task's build hook)."""
    if task not in TASK_NAMES:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    task_obj = importlib.import_module(f"imgen_ros.sim.tasks.{task}").TASK(noise)
    if with_d415:
        config = d415 or D415Config()
        build = task_obj.build

        def build_with_camera(spec) -> None:
            build(spec)
            add_d415_to_spec(spec, config)

        task_obj.build = build_with_camera
    env = TaskEnv(task_obj, observability=observability)
    camera = D415DepthCamera(env.model, d415 or D415Config()) if with_d415 else None
    return env, camera


def revealed_estimate(env: TaskEnv) -> ObjectEstimate | None:
    """The observability channel as an estimate: full -> the revealed true pose, partial -> the cue
    position (identity orientation); None before contact revealed it (or with observability none)."""
    if not env.revealed or env.observability == "none":
        return None
    if env.observability == "full":
        return ObjectEstimate(env.cue_full[:3].copy(), env.cue_full[3:7].copy())
    return ObjectEstimate(env.cue[:3].copy(), np.array([0.0, 0.0, 0.0, 1.0]))


def gripper_qpos(env: TaskEnv) -> NDArray[np.float64]:
    """Finger joint positions (robomimic ``robot0_gripper_qpos``)."""
    return env.observation()["robot0_gripper_qpos"]
