"""MuJoCo simulation of the FR3 + Franka Hand and the paper's tasks (ROS-free).

Contract (others code against it)::

    from imgen_ros.sim import make_env, TASK_NAMES
    env = make_env("block_grasp", noise="on", observability="full")
    obs = env.reset(seed=0)
    obs, reward, done, info = env.step(action)   # action: normalized (7,), 20 Hz delta TCP pose

See ``imgen_ros.sim.env.TaskEnv`` for the methods (observation, is_success, mistake_detected,
object_poses, datagen_info, get_state/set_state, env_args, render), ``imgen_ros.sim.expert``
(``ScriptedExpert``) and ``imgen_ros.sim.human`` (``SimulatedHuman``).

Observation ``"object"``: for each name in ``task.object_names`` the observed (corrupted) pose as
position (3) + quaternion xyzw (4), then the observability channel: ``"full"`` -> true pose of the
revealed object (7), ``"partial"`` -> the task's cue (3: first-contact position or unit direction),
``"none"`` -> nothing; always followed by a flag (1.0 once revealed by contact, else 0.0; zeros
before). Under ``"full"`` the revealed object's observed pose is also its true pose from the
revealing contact on (the paper: "ground truth pose upon contact"): the corruption ends there.
``get_state()`` = MuJoCo ``mjSTATE_INTEGRATION`` state followed by the env extras (step,
gripper command, reveal flag, cue (7), revealed true pose (7), target pose rows (12), corruption
offsets (3 per object), and for tasks with a ``contact_detector`` the wrench estimate's state (21,
``sim.wrench``) and the detector's (12, ``core.contact``)).

The poses ``object_poses`` reports (true and observed, hence the observation, the channel and
``datagen_info``) of ``task.cube_objects`` carry the canonical cube orientation
(``core.symmetry.canonical_cube_rotation``: z up, yaw in [-45, 45] deg for a resting cube), the rule
of the pose estimator, so a checkpoint reads the same quaternion in simulation and on the robot;
``body_pose`` stays the raw physics frame.
Tasks with a ``contact_detector`` (Block Grasp) open the channel when ``core.contact.ContactDetector``
fires on the simulated FR3 wrench estimate (``sim.wrench``, sampled at 100 Hz inside each control
step) and the gripper width, the detector the real graph's ``contact_detector`` node runs; the
others on MuJoCo contacts between the channel's bodies. ``env.external_wrench()`` is the latest
estimate (libfranka's ``O_F_ext_hat_K`` sign; NaN for tasks without a detector).

Layout: ``model`` (FR3 spec from franky-sim + TCP site, strong gripper, table), ``controller``
(DLS IK onto the arm's position servos), ``contacts`` (contact queries), ``task`` (the ``Task``
base class, ``Waypoint``, ``SubtaskSpec``, ``ContactChannel``), ``env`` (``TaskEnv``),
``corruption`` (noise samplers), ``wrench`` (the FR3's simulated external-wrench estimate),
``tasks/<name>.py`` (one module per task), ``rollout``.

How to add a task ``foo``:

1. Create ``imgen_ros/sim/tasks/foo.py`` with a ``Task`` subclass and ``TASK = FooTask``.
   Set ``name``, ``horizon``, ``subtasks`` (``SubtaskSpec(object_ref, term_signal)``, last one
   with ``term_signal=None``), ``object_names`` (bodies whose poses are observed, in order),
   ``channel`` (``ContactChannel(body_a, body_b, revealed, partial_cue)`` or None) and, if needed,
   ``noise_modes``.
2. Implement ``build(spec)`` (add bodies with primitive geoms: ``model.add_free_body``,
   ``model.add_box``; fixed objects that move per episode are mocap bodies),
   ``reset_scene(env, rng)`` (write qpos / mocap_pos; ``tasks.common.place_in_hand`` for objects
   held at the start), ``sample_corruption(rng)`` (``corruption`` module), ``is_success(env)``,
   ``mistake(env)`` (use ``env.touching(a, b)``, contact normals, ``env.finger_width()``),
   ``term_signals(env)`` for multi-subtask tasks, ``expert_waypoints(env, subtask, poses)`` and
   optionally ``recovery_waypoints(env, poses)``.
3. Add the name to ``TASK_NAMES`` if new. ``make_env`` imports ``imgen_ros.sim.tasks.<name>``.

Extra scene content (e.g. a camera) without a new task: ``TaskEnv(TASK(noise), scene_hooks=[f])``
runs ``f(spec)`` after the task's ``build``. The privileged ``ScriptedExpert`` replans a subtask
whose waypoints ran out without success (a retry); the naive one does not.
"""

from __future__ import annotations

import importlib

from imgen_ros.sim.env import OBSERVABILITY_MODES, TaskEnv
from imgen_ros.sim.task import Task

TASK_NAMES = ("block_grasp", "nut_insertion", "two_piece_assembly", "coffee", "nut_peg_assembly")

__all__ = ["OBSERVABILITY_MODES", "TASK_NAMES", "TaskEnv", "check_task", "make_env", "task_object_names"]


def _check_name(task: str) -> None:
    if task not in TASK_NAMES:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")


def check_task(task: str, *, noise: str | None = None, observability: str | None = None) -> None:
    """ValueError, as :func:`make_env` raises it, for an unknown task name or (when given) a noise mode or
    observability the task does not have; builds no scene."""
    _check_name(task)
    if observability is not None and observability not in OBSERVABILITY_MODES:
        raise ValueError(f"unknown observability {observability!r}; valid: {', '.join(OBSERVABILITY_MODES)}")
    if noise is not None:
        modes = task_class(task).noise_modes
        if noise not in modes:
            raise ValueError(f"task {task!r}: noise must be one of {list(modes)}, got {noise!r}")


def task_class(task: str) -> type[Task]:
    """The ``Task`` class of ``task`` (ValueError for an unknown name); builds no scene."""
    _check_name(task)
    return importlib.import_module(f"imgen_ros.sim.tasks.{task}").TASK


def task_object_names(task: str) -> tuple[str, ...]:
    """The objects whose poses ``task``'s observation carries, in its order; builds no scene."""
    return tuple(task_class(task).object_names)


def make_env(task: str, *, noise: str = "off", observability: str = "full", render: bool = False) -> TaskEnv:
    """Build the environment of ``task``; unknown task / noise / observability names raise ValueError."""
    check_task(task, observability=observability)
    return TaskEnv(task_class(task)(noise), observability=observability, render=render)
