"""Policy observations from measurements, and the pose-corruption models."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core.observation import (
    NoiseConfig,
    ObjectEstimate,
    ObservationConfig,
    PoseNoise,
    build_observation,
    channel_vector,
)

CUBE = ObjectEstimate(np.array([0.55, 0.0, 0.025]), np.array([0.0, 0.0, 0.0, 1.0]))


def obs(config=None, **kwargs):
    return build_observation(config or ObservationConfig(), np.array([0.5, 0.0, 0.3]), np.array([1.0, 0, 0, 0]),
                             np.array([0.04, 0.04]), {"cube": CUBE}, **kwargs)


def test_layout_matches_the_simulator_observation():
    from imgen_ros.sim import make_env

    env = make_env("block_grasp", noise="off")
    sim_obs = env.reset(0)
    o = obs()
    assert {k: v.shape for k, v in o.items()} == {k: v.shape for k, v in sim_obs.items()}
    np.testing.assert_allclose(o["object"][:7], np.r_[CUBE.position, CUBE.quat_xyzw])
    assert not np.any(o["object"][7:])


@pytest.mark.parametrize("observability,dim", [("full", 8), ("partial", 4), ("none", 1)])
def test_channel_is_zero_until_revealed_then_carries_the_revealed_pose(observability, dim):
    assert np.array_equal(channel_vector(observability, None), np.zeros(dim))
    revealed = channel_vector(observability, CUBE)
    assert revealed.shape == (dim,)
    if observability == "none":
        assert not np.any(revealed)
    else:
        assert revealed[-1] == 1.0 and np.allclose(revealed[:3], CUBE.position)


def test_corruption_shifts_only_the_believed_position():
    o = obs(corruption={"cube": np.array([0.0, 0.05, 0.0])})
    np.testing.assert_allclose(o["object"][:3], CUBE.position + np.array([0.0, 0.05, 0.0]))
    np.testing.assert_allclose(o["robot0_eef_pos"], [0.5, 0.0, 0.3])


@pytest.mark.parametrize("observability", ["full", "partial", "none"])
def test_a_revealed_pose_ends_the_corruption_only_under_full_observability(observability):
    truth = ObjectEstimate(np.array([0.56, 0.01, 0.025]), np.array([0.0, 0.0, 0.0, 1.0]))
    offset = {"cube": np.array([0.0, 0.05, 0.0])}
    o = obs(ObservationConfig(observability=observability), corruption=offset, revealed=truth,
            revealed_object="cube")
    if observability == "full":   # the current estimate, uncorrupted; the channel: the pose at contact
        np.testing.assert_allclose(o["object"][:7], np.r_[CUBE.position, CUBE.quat_xyzw])
        np.testing.assert_allclose(o["object"][7:14], np.r_[truth.position, truth.quat_xyzw])
    else:
        np.testing.assert_allclose(o["object"][:3], CUBE.position + offset["cube"])


def _assert_ros_observation_is_the_sims(env, sim_obs, current: ObjectEstimate, revealed: ObjectEstimate) -> None:
    """The ROS builder, given the cube's current estimate and the pose revealed at contact, reproduces
    the simulator's observation."""
    from imgen_ros.sim.env import mat_to_quat_xyzw

    eef = env.eef_pose()
    ros_obs = build_observation(ObservationConfig(), eef[:3, 3], mat_to_quat_xyzw(eef[:3, :3]),
                                sim_obs["robot0_gripper_qpos"], {"cube": current},
                                {"cube": env.corruption["cube"]}, revealed=revealed, revealed_object="cube")
    for key in sim_obs:
        np.testing.assert_allclose(ros_obs[key], sim_obs[key], atol=1e-9, err_msg=key)


def _cube_estimate(env) -> ObjectEstimate:
    from imgen_ros.sim.env import mat_to_quat_xyzw

    true = env.object_poses()["cube"]
    return ObjectEstimate(true[:3, 3], mat_to_quat_xyzw(true[:3, :3]))


def test_sim_and_ros_observations_agree_after_the_revealing_contact():
    """The simulator's observation once the fingers touched the cube equals the ROS builder's from
    the same measurements (believed pose, corruption, revealed pose), at contact and after the cube
    moved: the believed pose follows the current estimate, the channel keeps the pose at contact."""
    from imgen_ros.sim import make_env
    from imgen_ros.sim.expert import ScriptedExpert

    env = make_env("block_grasp", noise="on", observability="full")
    sim_obs = env.reset(3)
    expert = ScriptedExpert(env, use_true_poses=False)
    for _ in range(env.horizon):
        sim_obs, _, done, info = env.step(expert.act(sim_obs))
        if info["revealed"] or done:
            break
    assert env.revealed, "the naive expert's finger should touch the cube"
    at_contact = _cube_estimate(env)
    _assert_ros_observation_is_the_sims(env, sim_obs, at_contact, at_contact)
    assert np.linalg.norm(env.corruption["cube"]) > 0.02  # the corruption was there, and is gone

    expert = ScriptedExpert(env, use_true_poses=True)   # grasp and lift: the cube moves
    for _ in range(60):
        sim_obs, _, done, _ = env.step(expert.act(sim_obs))
        if done:
            break
    current = _cube_estimate(env)
    assert np.linalg.norm(current.position - at_contact.position) > 0.005, "the cube should have moved"
    _assert_ros_observation_is_the_sims(env, sim_obs, current, at_contact)


def test_missing_object_and_nonfinite_inputs_are_named():
    with pytest.raises(KeyError, match="cube"):
        build_observation(ObservationConfig(), np.zeros(3), np.array([0, 0, 0, 1.0]), np.zeros(2), {})
    with pytest.raises(ValueError, match="robot0_eef_pos"):
        build_observation(ObservationConfig(), np.array([np.nan, 0, 0]), np.array([0, 0, 0, 1.0]), np.zeros(2),
                          {"cube": CUBE})


def test_episode_offset_noise_respects_its_bounds_and_is_constant_within_an_episode():
    noise = PoseNoise(NoiseConfig(mode="episode_offset", half_range_m=(0.01, 0.07, 0.0),
                                  minimum_m=(0.0, 0.025, 0.0)))
    offsets = []
    for episode in range(200):
        noise.new_episode(episode)
        first = noise.sample()
        assert np.array_equal(first, noise.sample())
        offsets.append(first)
    d = np.array(offsets)
    assert np.all(np.abs(d[:, 0]) <= 0.01) and np.all(d[:, 2] == 0)
    assert np.all((np.abs(d[:, 1]) >= 0.025) & (np.abs(d[:, 1]) <= 0.07))
    assert (d[:, 1] > 0).any() and (d[:, 1] < 0).any()
    noise.new_episode(7)
    again = noise.sample()
    assert np.array_equal(again, offsets[7]), "seeded per episode: reproducible"


def test_gaussian_noise_is_fresh_each_step_and_off_is_zero():
    noise = PoseNoise(NoiseConfig(mode="gaussian", sigma_m=0.01))
    noise.new_episode(0)
    samples = np.array([noise.sample() for _ in range(2000)])
    assert abs(samples.std() - 0.01) < 0.001 and len(np.unique(samples[:, 0])) == 2000
    off = PoseNoise(NoiseConfig())
    off.new_episode(0)
    assert not np.any(off.sample())


@pytest.mark.parametrize("kwargs", [{"mode": "uniform"}, {"minimum_m": (0.0, 0.08, 0.0)}, {"sigma_m": -1.0},
                                    {"half_range_m": (0.01, 0.07)}])
def test_bad_noise_config_is_rejected(kwargs):
    with pytest.raises(ValueError, match="noise"):
        NoiseConfig(**kwargs)
