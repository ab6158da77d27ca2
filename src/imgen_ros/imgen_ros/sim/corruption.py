"""The pose-corruption samplers now live in ``imgen_ros.core.corruption`` (shared with the real graph)."""

from imgen_ros.core.corruption import block_grasp_noise, box_noise_with_minimum, radial_noise

__all__ = ["block_grasp_noise", "box_noise_with_minimum", "radial_noise"]
