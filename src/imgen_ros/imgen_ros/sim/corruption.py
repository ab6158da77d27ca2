"""Pose-corruption samplers (the paper's sensor-noise models), all from a numpy Generator."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


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
