"""The paper's pose-corruption models per task (ROS-free, numpy only), sampled from a Generator.

One definition serves the simulator (``TaskEnv`` with noise on: ``Task.sample_corruption``), the
real graph (policy_node ``observation.noise.mode: task``, the real launch's ``pose_error:=task``) and
the experiments, so a checkpoint meets on the robot the error distribution it was trained against.
Each model returns the position offset (3,) added to the observed pose of each corrupted object.
Nut-and-Peg's error is the object's geometry, not a sensor offset: it has no model here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Offsets = dict[str, NDArray[np.float64]]

COFFEE_RADIUS_M = (0.02, 0.04)


def box_noise_with_minimum(rng: np.random.Generator, half_range: float, minimum: float) -> NDArray[np.float64]:
    """(dx, dy, 0) uniform in [-half_range, half_range]^2 with |d| >= ``minimum`` in at least one axis.

    Rejection sampling (exactly uniform over the allowed set)."""
    if not 0 <= minimum < half_range:
        raise ValueError(f"need 0 <= minimum < half_range, got minimum={minimum}, half_range={half_range}")
    while True:
        d = rng.uniform(-half_range, half_range, size=2)
        if np.max(np.abs(d)) >= minimum:
            return np.array([d[0], d[1], 0.0])


def block_grasp_noise(rng: np.random.Generator, x_range: float = 0.01, y_range: float = 0.07,
                      y_minimum: float = 0.025) -> NDArray[np.float64]:
    """(dx, dy, 0): dx ~ U(-x_range, x_range), |dy| ~ U(y_minimum, y_range) with a random sign."""
    dx = rng.uniform(-x_range, x_range)
    dy = rng.uniform(y_minimum, y_range) * rng.choice((-1.0, 1.0))
    return np.array([dx, dy, 0.0])


def radial_noise(rng: np.random.Generator, r_min: float, r_max: float) -> NDArray[np.float64]:
    """(dx, dy, 0) with planar magnitude uniform in [r_min, r_max] and a uniform direction."""
    r = rng.uniform(r_min, r_max)
    theta = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([r * np.cos(theta), r * np.sin(theta), 0.0])


# task -> offsets per corrupted object (the paper, 4.4.1 "Sources of Observation Error")
TASK_CORRUPTION: dict[str, Callable[[np.random.Generator], Offsets]] = {
    "block_grasp": lambda rng: {"cube": block_grasp_noise(rng)},                    # x +-1 cm, y +-7 cm, |dy| >= 2.5 cm
    "nut_insertion": lambda rng: {"peg": box_noise_with_minimum(rng, 0.04, 0.02)},  # +-4 cm, >= 2 cm in one axis
    "two_piece_assembly": lambda rng: {"receptacle": box_noise_with_minimum(rng, 0.04, 0.01)},
    "coffee": lambda rng: {"coffee_machine": radial_noise(rng, *COFFEE_RADIUS_M)},  # radial 2..4 cm
}


def sample_task_corruption(task: str, rng: np.random.Generator) -> Offsets:
    """One episode's offsets for ``task``; ValueError for a task without a sensor-error model."""
    model = TASK_CORRUPTION.get(task)
    if model is None:
        raise ValueError(f"task {task!r} has no pose-corruption model; tasks with one: {sorted(TASK_CORRUPTION)}")
    return model(rng)
