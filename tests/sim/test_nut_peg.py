"""Nut-and-Peg Assembly: handle-side geometry error, missed-grasp mistake, two subtasks."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.sim import make_env
from imgen_ros.sim.env import TaskEnv
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.human import SimulatedHuman
from imgen_ros.sim.tasks.nut_peg_assembly import EMPTY_GAP, HANDLE_OFFSET, REGION_X, REGION_Y


@pytest.fixture(scope="module")
def envs() -> dict[str, TaskEnv]:
    built = {noise: make_env("nut_peg_assembly", noise=noise) for noise in ("off", "on", "mixture")}
    yield built
    for env in built.values():
        env.close()


def _handle_in_nut(env: TaskEnv, observed: bool) -> np.ndarray:
    poses = env.object_poses(observed=observed)
    return (np.linalg.inv(poses["nut"]) @ poses["nut_handle"])[:3, 3]


def _run(env: TaskEnv, policy, seed: int) -> tuple[bool, list[dict]]:
    obs = env.reset(seed)
    policy.reset()
    infos = []
    for _ in range(env.horizon):
        obs, _, done, info = env.step(policy.act(obs))
        infos.append(dict(info, signals=env.term_signals(), width=env.finger_width(), grip=env.gripper_command))
        if done:
            break
    return bool(infos[-1]["success"]), infos


def test_geometry_flips_the_handle_but_not_the_observation(envs: dict[str, TaskEnv]) -> None:
    obs = {}
    for noise, sign in (("off", 1.0), ("on", -1.0)):
        env = envs[noise]
        obs[noise] = env.reset(3)
        np.testing.assert_allclose(_handle_in_nut(env, observed=False), [sign * HANDLE_OFFSET, 0, 0], atol=2e-3)
        np.testing.assert_allclose(_handle_in_nut(env, observed=True), [HANDLE_OFFSET, 0, 0], atol=2e-3)
        nut = env.object_poses()["nut"][:3, 3]
        assert REGION_X[0] - 1e-3 <= nut[0] <= REGION_X[1] + 1e-3 and REGION_Y[0] - 1e-3 <= nut[1] <= REGION_Y[1] + 1e-3
    # same seed, same scene: identical observations whichever side the handle is on
    for key in obs["off"]:
        np.testing.assert_allclose(obs["on"][key], obs["off"][key], atol=2e-3)


def test_mixture_samples_both_geometries_and_state_restores_geometry(envs: dict[str, TaskEnv]) -> None:
    env = envs["mixture"]
    geometries = {}
    for seed in range(10):
        env.reset(seed)
        geometries[seed] = env.task.true_geometry(env)
    assert set(geometries.values()) == {1, 2}
    g2_seed = next(s for s, g in geometries.items() if g == 2)
    g1_seed = next(s for s, g in geometries.items() if g == 1)
    env.reset(g2_seed)
    state = env.get_state()
    env.reset(g1_seed)
    env.set_state(state)
    assert env.task.true_geometry(env) == 2
    for _ in range(5):
        env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    np.testing.assert_allclose(_handle_in_nut(env, observed=False), [-HANDLE_OFFSET, 0, 0], atol=2e-3)


def test_expert_on_geometry_one_grasps_then_places(envs: dict[str, TaskEnv]) -> None:
    env = envs["off"]
    success, infos = _run(env, ScriptedExpert(env, use_true_poses=False), seed=2)
    assert success and not any(i["mistake"] for i in infos)
    grasped = [i["signals"]["nut_grasped"] for i in infos]
    first = grasped.index(True)
    assert all(grasped[first:first + 10])  # the grasp holds while the nut is carried
    assert "subtask_term_signals/nut_grasped" in env.datagen_info()


def test_geometry_two_makes_the_naive_grasp_miss_and_the_human_recover(envs: dict[str, TaskEnv]) -> None:
    env = envs["on"]
    success, infos = _run(env, ScriptedExpert(env, use_true_poses=False), seed=2)
    assert not success
    miss = next(k for k, i in enumerate(infos) if i["mistake"])
    assert infos[miss]["grip"] > 0 and infos[miss]["width"] < EMPTY_GAP  # closed on nothing
    assert not any(i["mistake"] for i in infos[:miss])
    assert not any(i["signals"]["nut_grasped"] for i in infos[:miss + 1])
    human = SimulatedHuman(env, ScriptedExpert(env, use_true_poses=False))
    success, infos = _run(env, human, seed=2)
    assert success and human.interventions == 1


def test_recovery_from_a_missed_grasp_relocates_with_the_gripper_closed(envs: dict[str, TaskEnv]) -> None:
    """The closed, empty gripper is what tells a recovery from a first approach (paper, Assumption 4):
    the back-off and the move over the true handle keep it; only the regrasp opens it, over the handle."""
    env = envs["on"]
    env.reset(2)
    poses = env.object_poses()
    plan = env.task.recovery_waypoints(env, poses)
    assert [w.gripper for w in plan] == [1.0, 1.0]
    handle = poses["nut_handle"][:3, 3]
    np.testing.assert_allclose(plan[-1].pose[:2, 3], handle[:2], atol=1e-9)  # over the true handle
    assert plan[-1].pose[2, 3] > handle[2] + 0.09
    regrasp = env.task.expert_waypoints(env, 0, poses)
    assert regrasp[0].gripper < 0 and np.allclose(regrasp[0].pose[:3, 3], plan[-1].pose[:3, 3])
