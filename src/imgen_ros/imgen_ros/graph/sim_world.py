"""The simulated world behind sim_node: a TaskEnv (optionally with the simulated D415 in the scene)
and the messages' contents it provides (ROS-free)."""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable

import mujoco
import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.observation import ObjectEstimate
from imgen_ros.sim import TaskEnv, task_class
from imgen_ros.sim.cameras import D415Config, D415DepthCamera, DepthFrame, add_d415_to_spec


def make_world(task: str, noise: str, observability: str, with_d415: bool,
               d415: D415Config | None = None) -> TaskEnv:
    """``make_env`` plus, when asked, the D415 mounted in the scene (added in the task's build hook)."""
    task_obj = task_class(task)(noise)
    if with_d415:
        config = d415 or D415Config()
        build = task_obj.build

        def build_with_camera(spec) -> None:
            build(spec)
            add_d415_to_spec(spec, config)

        task_obj.build = build_with_camera
    return TaskEnv(task_obj, observability=observability)


class DepthRenderThread(threading.Thread):
    """Renders the simulated D415 in a thread of its own: an EGL context belongs to the thread that
    made it current, and executor callbacks may run on any thread. ``submit`` hands over a copy of
    the simulation data (so stepping goes on meanwhile); only the newest pending request is kept."""

    def __init__(self, model: mujoco.MjModel, on_frame: Callable[[DepthFrame], None],
                 config: D415Config | None = None) -> None:
        super().__init__(name="d415-render", daemon=True)
        self.model, self.on_frame, self.config = model, on_frame, config or D415Config()
        self._pending: queue.Queue[mujoco.MjData | None] = queue.Queue(maxsize=1)
        self._seed: int | None = None
        self.error: BaseException | None = None

    def submit(self, data: mujoco.MjData) -> None:
        snapshot = copy.copy(data)
        try:
            self._pending.get_nowait()
        except queue.Empty:
            pass
        self._pending.put_nowait(snapshot)

    def seed(self, seed: int) -> None:
        self._seed = seed

    def stop(self) -> None:
        self.submit_stop()
        self.join(timeout=5.0)

    def submit_stop(self) -> None:
        try:
            self._pending.get_nowait()
        except queue.Empty:
            pass
        self._pending.put_nowait(None)

    def run(self) -> None:
        try:
            with D415DepthCamera(self.model, self.config) as camera:
                while (data := self._pending.get()) is not None:
                    if self._seed is not None:
                        camera.seed(self._seed)
                        self._seed = None
                    self.on_frame(camera.capture(data))
        except BaseException as exc:  # reported by the node, never silently
            self.error = exc


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
    return env.finger_qpos()
