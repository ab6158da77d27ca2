"""Coffee: pod in hand into the machine's narrow holder; radial belief noise; pod-holder reveal."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from imgen_ros.sim import make_env
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.human import SimulatedHuman
from imgen_ros.sim.tasks.coffee import REGION_X, REGION_Y, holder_pose


@pytest.fixture(scope="module")
def env_off() -> TaskEnv:
    env = make_env("coffee", noise="off")
    yield env
    env.close()


@pytest.fixture(scope="module")
def env_on() -> TaskEnv:
    env = make_env("coffee", noise="on", observability="full")
    yield env
    env.close()


def _run(env: TaskEnv, policy, seed: int) -> tuple[bool, list[dict]]:
    obs = env.reset(seed)
    policy.reset()
    infos = []
    for _ in range(env.horizon):
        obs, _, done, info = env.step(policy.act(obs))
        info = dict(info, intervening=bool(getattr(policy, "is_intervening", False)), obs=obs)
        infos.append(info)
        if done:
            break
    return bool(infos[-1]["success"]), infos


def test_reset_holds_the_pod_and_samples_the_machine_in_its_region(env_off: TaskEnv) -> None:
    for seed in (0, 1, 2):
        env_off.reset(seed)
        machine = env_off.object_poses()["coffee_machine"][:3, 3]
        assert REGION_X[0] <= machine[0] <= REGION_X[1] and REGION_Y[0] <= machine[1] <= REGION_Y[1]
        assert env_off.touching("left_finger", "pod") and env_off.touching("right_finger", "pod")
        pod = env_off.body_pose("pod")
        assert np.linalg.norm(pod[:3, 3] - env_off.eef_pose()[:3, 3]) < 0.02
        assert pod[2, 2] > 0.99  # upright
        assert not env_off.is_success() and not env_off.mistake_detected()
    a, b = env_off.reset(5), env_off.reset(5)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_noise_is_radial_two_to_four_cm(env_on: TaskEnv) -> None:
    radii = []
    for seed in range(12):
        env_on.reset(seed)
        offset = env_on.object_poses(observed=True)["coffee_machine"][:3, 3] - \
            env_on.object_poses()["coffee_machine"][:3, 3]
        assert offset[2] == 0.0
        radii.append(np.hypot(offset[0], offset[1]))
        pod_offset = env_on.object_poses(observed=True)["pod"] - env_on.object_poses()["pod"]
        assert np.all(pod_offset == 0.0)  # only the machine's belief is corrupted
    assert 0.02 <= min(radii) and max(radii) <= 0.04


def test_privileged_expert_seats_and_releases_the_pod(env_off: TaskEnv) -> None:
    success, infos = _run(env_off, ScriptedExpert(env_off, use_true_poses=True), seed=3)
    assert success
    assert not any(i["mistake"] for i in infos)  # a clean insertion touches the holder, not a mistake
    assert env_off.gripper_command < 0 and not env_off.touching("fingers", "pod")
    pod = env_off.body_pose("pod")[:3, 3]
    bore = holder_pose(env_off.body_pose("coffee_machine"))[:3, 3]
    assert np.hypot(*(pod[:2] - bore[:2])) < 0.005 and pod[2] - bore[2] == pytest.approx(0.02, abs=0.006)


def test_naive_expert_hits_the_rim_and_contact_reveals_the_true_machine(env_on: TaskEnv) -> None:
    success, infos = _run(env_on, ScriptedExpert(env_on, use_true_poses=False), seed=4)
    assert not success
    first = next(k for k, i in enumerate(infos) if i["mistake"])
    assert infos[first]["revealed"]  # the rim is part of the holder: the same contact reveals
    channel = infos[first]["obs"]["object"][-8:]
    machine = env_on.object_poses()["coffee_machine"]
    np.testing.assert_allclose(channel[:3], machine[:3, 3], atol=1e-9)
    assert channel[-1] == 1.0
    before = infos[first - 1]["obs"]["object"][-8:]
    assert np.all(before == 0.0)


def test_simulated_human_recovers_after_the_mistake(env_on: TaskEnv) -> None:
    human = SimulatedHuman(env_on, ScriptedExpert(env_on, use_true_poses=False))
    success, infos = _run(env_on, human, seed=4)
    assert success and human.interventions == 1
    flags = [i["intervening"] for i in infos]
    takeover = flags.index(True)
    assert not any(flags[:takeover]) and all(flags[takeover:])


def test_state_roundtrip_and_bad_noise_mode(env_on: TaskEnv) -> None:
    env_on.reset(9)
    for _ in range(5):
        env_on.step(np.array([0.2, 0, -0.2, 0, 0, 0, 1.0]))
    state = env_on.get_state()
    mujoco.mj_forward(env_on.model, env_on.data)  # kinematics after mj_step lag one substep behind qpos
    obs = env_on.observation()
    env_on.reset(10)
    env_on.set_state(state)
    for key, value in env_on.observation().items():
        np.testing.assert_allclose(value, obs[key], atol=1e-12)
    with pytest.raises(ValueError, match="noise"):
        make_env("coffee", noise="mixture")
