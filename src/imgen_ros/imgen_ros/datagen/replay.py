"""Adapt a source segment to the current scene and execute it open-loop (MimicGen's core step).

Adapting = SE(3)-transforming the segment's target poses so that their pose relative to the
reference object is the same now as in the source, then prepending a linear/slerp interpolation
from the current TCP pose to the first transformed pose. Executing = for each target pose, the
delta action ``target_pose_to_action(target, current TCP, gripper)`` plus Gaussian action noise
on the six pose components, clipped to [-1, 1].
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core.action import ActionScale, action_to_target_pose, delta_to_action
from imgen_ros.core.pose import Pose, interpolate_poses, matrix_to_axisangle, transform_poses_to_new_frame
from imgen_ros.data.episode import EpisodeRecorder
from imgen_ros.datagen.segments import Segment


@dataclass(frozen=True)
class ReplayConfig:
    """How segments are adapted and executed."""

    action_noise: float = 0.05  # std of Gaussian noise on the 6 normalized pose components
    num_interp_steps: int = 5  # interpolation steps from the current TCP pose to the segment start
    num_fixed_steps: int = 0  # steps holding the segment's first pose before executing it
    hold_steps: int = 10  # after a task's final segment: hold its last pose up to this many steps until success
    # I-MG recoveries only (0 = the paper's straight interpolation): rise this far, cross at that
    # height and come down onto the recovery's first pose, each leg ``clearance_steps`` long. A
    # straight move from a mistake at finger height to a source recovery on another side of a
    # (yawed) cube drags a finger across it and knocks it over (I-MG kept 150/175 -> 98/100 with it).
    recovery_clearance_m: float = 0.03
    clearance_steps: int = 3
    # True: replay the person's motion without the steps where they held still (datagen.segments.held_steps);
    # False (MimicGen's): every source step
    drop_holds: bool = False

    def __post_init__(self) -> None:
        if min(self.action_noise, self.num_interp_steps, self.num_fixed_steps, self.hold_steps,
               self.recovery_clearance_m, self.clearance_steps) < 0:
            raise ValueError(f"ReplayConfig values must be >= 0, got {self}")


def approach_poses(start: Pose, end: Pose, config: ReplayConfig, clearance_m: float) -> NDArray[np.float64]:
    """The interpolation from ``start`` to ``end``: straight (MimicGen), or with ``clearance_m`` > 0
    up, across above both, and down (each vertical leg ``config.clearance_steps`` long)."""
    if clearance_m <= 0:
        return interpolate_poses(start, end, config.num_interp_steps)
    height = max(start[2, 3], end[2, 3]) + clearance_m
    up = start.copy()
    up[2, 3] = height
    above = end.copy()
    above[2, 3] = height
    legs = [interpolate_poses(start, up, config.clearance_steps),
            interpolate_poses(up, above, config.num_interp_steps),
            interpolate_poses(above, end, config.clearance_steps)]
    return np.concatenate(legs, axis=0)


def adapt_segment(segment: Segment, object_pose_now: Pose, eef_pose_now: Pose, gripper_now: float,
                  config: ReplayConfig, clearance_m: float = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Target poses (T', 4, 4) and gripper actions (T',) executing ``segment`` in the current scene
    (``clearance_m``: see :func:`approach_poses`)."""
    transformed = transform_poses_to_new_frame(segment.target_poses, segment.object_pose, object_pose_now)
    interp = approach_poses(eef_pose_now, transformed[0], config, clearance_m)
    hold = np.repeat(transformed[:1], config.num_fixed_steps, axis=0)
    poses = np.concatenate([interp, hold, transformed], axis=0)
    grippers = np.concatenate([np.full(len(interp) + len(hold), gripper_now), segment.gripper])
    return poses, grippers


def rotation_vector(rotation: NDArray) -> NDArray[np.float64]:
    """Axis-angle vector of a 3x3 rotation (numpy; scipy's general path only near 180 degrees)."""
    cos = (np.trace(rotation) - 1.0) * 0.5
    if cos < -0.99:
        return matrix_to_axisangle(rotation)
    angle = np.arccos(min(1.0, cos))
    skew = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    if angle < 1e-7:
        return 0.5 * skew
    return skew * (angle / (2.0 * np.sin(angle)))


def pose_action(target: Pose, current: Pose, gripper: float, scale: ActionScale) -> NDArray[np.float64]:
    """Normalized action moving ``current`` toward ``target`` (same as core.action.target_pose_to_action)."""
    drot = rotation_vector(target[:3, :3] @ current[:3, :3].T)
    return delta_to_action(target[:3, 3] - current[:3, 3], drot, gripper, scale)


@dataclass
class StepTimer:
    """Seconds spent in physics (``env.step``/``reset``) and policy inference: the generation floor."""

    physics_s: float = 0.0
    policy_s: float = 0.0
    steps: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def step(self, env: Any, action: NDArray) -> tuple[dict, float, bool, dict]:
        t0 = time.perf_counter()
        out = env.step(action)
        self.physics_s += time.perf_counter() - t0
        self.steps += 1
        return out

    def reset(self, env: Any, seed: int) -> dict:
        t0 = time.perf_counter()
        obs = env.reset(seed)
        self.physics_s += time.perf_counter() - t0
        return obs

    def act(self, policy: Any, obs: dict) -> NDArray:
        t0 = time.perf_counter()
        action = np.asarray(policy.act(obs), dtype=float)
        self.policy_s += time.perf_counter() - t0
        return action


def step_datagen_info(env: Any, action: NDArray) -> dict[str, NDArray]:
    """The env's datagen info at this step, with ``target_pose``/``gripper_action`` of ``action`` (about to be
    applied): MimicGen replays these controller targets."""
    try:
        return env.datagen_info(action)
    except TypeError:  # an env whose datagen_info() takes no action: compute the target here
        info = dict(env.datagen_info())
        info["target_pose"] = action_to_target_pose(action, np.asarray(info["eef_pose"]), env.scale)
        info["gripper_action"] = np.array([1.0 if action[6] > 0 else -1.0])
        return info


def recorded_step(env: Any, obs: dict, action: NDArray, mode: int, recorder: EpisodeRecorder | None,
                  timer: StepTimer) -> tuple[dict, float, bool, dict]:
    """One env step, recorded (with state and datagen info before the step) when ``recorder`` is set."""
    if recorder is None:
        return timer.step(env, action)
    state = env.get_state()
    info = step_datagen_info(env, action)
    next_obs, reward, done, step_info = timer.step(env, action)
    recorder.add(obs=obs, action=action, reward=reward, done=done, next_obs=next_obs, state=state,
                 action_mode=mode, datagen_info=info)
    return next_obs, reward, done, step_info


@dataclass
class ReplayOutcome:
    obs: dict
    done: bool
    success: bool
    steps: int
    last_gripper: float


def execute_poses(env: Any, obs: dict, poses: NDArray, grippers: NDArray, rng: np.random.Generator,
                  noise: float, mode: int, recorder: EpisodeRecorder | None, timer: StepTimer,
                  step_budget: int, stop: Callable[[], bool] | None = None) -> ReplayOutcome:
    """Drive the TCP through ``poses`` open-loop (delta actions + noise); stops on done, budget or ``stop()``."""
    steps = 0
    done = False
    gripper = float(grippers[0]) if len(grippers) else 0.0
    for target, gripper in zip(poses, grippers, strict=True):
        if steps >= step_budget or (stop is not None and stop()):
            break
        action = pose_action(target, env.eef_pose(), float(gripper), env.scale)
        if noise > 0:
            action[:6] += rng.normal(0.0, noise, size=6)
        action = np.clip(action, -1.0, 1.0)
        obs, _, done, _ = recorded_step(env, obs, action, mode, recorder, timer)
        steps += 1
        if done:
            break
    return ReplayOutcome(obs=obs, done=done, success=bool(env.is_success()), steps=steps, last_gripper=float(gripper))
