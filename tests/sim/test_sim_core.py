"""Behaviour of the simulation core: controller, grasping, tasks, mistakes, seeding, state, corruption."""

from __future__ import annotations

import json

import mujoco
import numpy as np
import pytest
from imgen_ros.core.action import DEFAULT_SCALE, target_pose_to_action
from imgen_ros.core.pose import axisangle_to_matrix, pose_distance, pose_inv
from imgen_ros.sim import TASK_NAMES, make_env
from imgen_ros.sim.corruption import block_grasp_noise, box_noise_with_minimum, radial_noise
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.human import SimulatedHuman
from imgen_ros.sim.rollout import run_episode
from imgen_ros.sim.tasks.common import set_free_pose

CORE_TASKS = ("block_grasp", "nut_insertion", "two_piece_assembly")


@pytest.fixture(scope="module")
def envs():
    made = {(t, n): make_env(t, noise=n) for t in CORE_TASKS for n in ("off", "on")}
    yield made
    for env in made.values():
        env.close()


def test_task_names_contract():
    assert TASK_NAMES == ("block_grasp", "nut_insertion", "two_piece_assembly", "coffee", "nut_peg_assembly")


@pytest.mark.parametrize("kwargs, word", [
    ({"task": "no_such_task"}, "block_grasp"),
    ({"task": "block_grasp", "observability": "psychic"}, "partial"),
    ({"task": "block_grasp", "noise": "loud"}, "on"),
])
def test_unknown_names_raise_with_valid_options(kwargs, word):
    task = kwargs.pop("task")
    with pytest.raises(ValueError, match=word):
        make_env(task, **kwargs)


def test_controller_tracks_a_commanded_pose(envs):
    env = envs[("block_grasp", "off")]
    env.reset(0)
    goal = env.eef_pose()
    goal[:3, 3] += (0.04, -0.03, 0.03)
    goal[:3, :3] = axisangle_to_matrix([0.0, 0.0, 0.3]) @ goal[:3, :3]
    for _ in range(8):
        env.step(target_pose_to_action(goal, env.eef_pose(), -1.0, env.scale))
    dpos, dang = pose_distance(env.eef_pose(), goal)
    assert dpos < 0.002 and dang < 0.02


def test_single_step_moves_most_of_the_delta(envs):
    env = envs[("block_grasp", "off")]
    env.reset(1)
    start = env.eef_pose()[:3, 3].copy()
    action = np.zeros(7)
    action[:3] = (0.2, 0.0, -0.2)  # 1 cm, -1 cm
    action[6] = -1.0
    env.step(action)
    moved = env.eef_pose()[:3, 3] - start
    np.testing.assert_allclose(moved, [0.01, 0.0, -0.01], atol=0.004)
    np.testing.assert_allclose(env.target_pose[:3, 3], start + np.array([0.01, 0.0, -0.01]), atol=1e-9)


@pytest.mark.parametrize("task", ["nut_insertion", "two_piece_assembly"])
def test_held_object_does_not_slip_at_full_speed(envs, task):
    env = envs[(task, "off")]
    env.reset(3)
    held = env.task.held
    before = pose_inv(env.eef_pose()) @ env.body_pose(held)
    for axis, sign in ((0, 1), (1, -1), (2, 1), (0, -1), (1, 1), (2, -1)):
        for _ in range(4):
            action = np.zeros(7)
            action[axis] = sign
            action[6] = 1.0
            env.step(action)
    after = pose_inv(env.eef_pose()) @ env.body_pose(held)
    dpos, dang = pose_distance(before, after)
    assert dpos < 0.004 and dang < 0.03  # soft-contact creep over 1.2 m of bang-bang motion: ~3 mm


def test_grasped_cube_stays_in_hand_at_full_speed(envs):
    env = envs[("block_grasp", "off")]
    expert = ScriptedExpert(env, use_true_poses=True)
    assert run_episode(env, expert, 4).success
    for axis, sign in ((0, 1), (1, 1), (2, 1), (1, -1), (0, -1)):
        for _ in range(3):
            action = np.zeros(7)
            action[axis] = sign
            action[6] = 1.0
            env.step(action)
    assert env.is_success()


@pytest.mark.parametrize("task", CORE_TASKS)
def test_privileged_expert_succeeds_without_mistakes(envs, task):
    env = envs[(task, "on")]  # true poses: corruption must not matter
    expert = ScriptedExpert(env, use_true_poses=True)
    for seed in (0, 1):
        obs = env.reset(seed)
        expert.reset()
        done, info = False, {}
        assert not env.is_success()
        while not done:
            obs, _, done, info = env.step(expert.act(obs))
            assert not info["mistake"], f"{task} seed {seed}: mistake during a clean run at step {env.step_count}"
        assert info["success"]


@pytest.mark.parametrize("task", ["nut_insertion", "two_piece_assembly"])
def test_insertion_success_needs_alignment_and_depth(envs, task):
    env = envs[(task, "off")]
    env.reset(5)
    target = env.body_pose(env.task.target)[:3, 3]
    z_inserted = env.task.inserted_z
    env.set_gripper(-1.0)
    for offset, expected in (((0.0, 0.0, z_inserted), True), ((0.02, 0.0, z_inserted), False),
                             ((0.0, 0.0, 0.15), False)):
        set_free_pose(env, env.task.held, target + np.array(offset), np.array([1.0, 0, 0, 0]))

        mujoco.mj_forward(env.model, env.data)
        assert env.is_success() is expected, offset


def test_block_grasp_success_needs_a_lift_in_closed_fingers(envs):
    env = envs[("block_grasp", "off")]
    env.reset(2)
    assert not env.is_success()
    cube = env.body_pose("cube")[:3, 3]
    set_free_pose(env, "cube", cube + np.array([0.0, 0.0, 0.1]), np.array([1.0, 0, 0, 0]))

    mujoco.mj_forward(env.model, env.data)
    assert not env.is_success()  # lifted but not held


@pytest.mark.parametrize("task", CORE_TASKS)
def test_naive_expert_makes_a_detected_mistake_under_noise(envs, task):
    env = envs[(task, "on")]
    expert = ScriptedExpert(env, use_true_poses=False)
    result = run_episode(env, expert, 11)
    assert result.mistake and not result.success


@pytest.mark.parametrize("task", CORE_TASKS)
def test_simulated_human_recovers(envs, task):
    env = envs[(task, "on")]
    human = SimulatedHuman(env, ScriptedExpert(env, use_true_poses=False))
    obs = env.reset(12)
    human.reset()
    labels, done, info = [], False, {}
    while not done:
        action = human.act(obs)
        labels.append(human.is_intervening)
        obs, _, done, info = env.step(action)
    assert info["success"]
    assert labels[0] is False and labels[-1] is True and human.interventions == 1
    first = labels.index(True)
    assert all(labels[first:])


@pytest.mark.parametrize("task", CORE_TASKS)
def test_same_seed_same_episode(envs, task):
    env = envs[(task, "on")]
    human = SimulatedHuman(env, ScriptedExpert(env, use_true_poses=False))

    def trajectory(seed: int) -> np.ndarray:
        obs = env.reset(seed)
        human.reset()
        rows = []
        for _ in range(40):
            action = human.act(obs)
            obs, _, done, _ = env.step(action)
            rows.append(np.concatenate([action, *obs.values()]))
            if done:
                break
        return np.array(rows)

    a, b, c = trajectory(21), trajectory(21), trajectory(22)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("task", CORE_TASKS)
def test_set_state_restores_the_episode(envs, task):
    env = envs[(task, "on")]
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.6, 0.6, size=(12, 7))
    env.reset(8)
    for a in actions[:4]:
        env.step(a)
    state = env.get_state()
    first = [np.concatenate(list(env.step(a)[0].values())) for a in actions[4:]]
    info_a = env.datagen_info()
    env.reset(99)
    env.set_state(state)
    second = [np.concatenate(list(env.step(a)[0].values())) for a in actions[4:]]
    np.testing.assert_array_equal(np.array(first), np.array(second))
    info_b = env.datagen_info()
    for key in info_a:
        np.testing.assert_array_equal(info_a[key], info_b[key])
    with pytest.raises(ValueError, match="shape"):
        env.set_state(state[:-1])


def test_corruption_samplers_respect_the_paper_constraints():
    rng = np.random.default_rng(0)
    block = np.array([block_grasp_noise(rng) for _ in range(3000)])
    assert np.all(np.abs(block[:, 0]) <= 0.01) and np.all(block[:, 2] == 0)
    assert np.all(np.abs(block[:, 1]) >= 0.025) and np.all(np.abs(block[:, 1]) <= 0.07)
    assert (block[:, 1] > 0).mean() == pytest.approx(0.5, abs=0.05)
    for minimum in (0.02, 0.01):
        box = np.array([box_noise_with_minimum(rng, 0.04, minimum) for _ in range(3000)])
        assert np.all(np.abs(box[:, :2]) <= 0.04)
        assert np.all(np.abs(box[:, :2]).max(axis=1) >= minimum)
        assert np.abs(box[:, :2]).max(axis=1).min() < minimum + 0.002  # the bound is reached, not avoided
    radial = np.array([radial_noise(rng, 0.02, 0.04) for _ in range(3000)])
    r = np.hypot(radial[:, 0], radial[:, 1])
    assert np.all((r >= 0.02) & (r <= 0.04))


@pytest.mark.parametrize("task, minimum", [("nut_insertion", 0.02), ("two_piece_assembly", 0.01)])
def test_env_corrupts_only_with_noise_on(envs, task, minimum):
    target = envs[(task, "on")].task.target
    for seed in range(15):
        on = envs[(task, "on")]
        on.reset(seed)
        d = on.corruption[target]
        assert np.abs(d[:2]).max() >= minimum and np.abs(d[:2]).max() <= 0.04
        observed, true = on.object_poses(observed=True)[target], on.object_poses()[target]
        np.testing.assert_allclose(observed[:3, 3] - true[:3, 3], d)
        off = envs[(task, "off")]
        off.reset(seed)
        assert np.all(off.corruption[target] == 0)


@pytest.mark.parametrize("task, observability", [("nut_insertion", "full"), ("nut_insertion", "partial"),
                                                 ("two_piece_assembly", "partial"), ("block_grasp", "none")])
def test_observability_channel_reveals_on_contact(task, observability):
    env = make_env(task, noise="on", observability=observability)
    expert = ScriptedExpert(env, use_true_poses=False)
    obs = env.reset(3)
    expert.reset()
    revealed_obs = None
    for _ in range(60):
        assert obs["object"][-1] == 0.0 or revealed_obs is not None
        obs, _, done, _ = env.step(expert.act(obs))
        if obs["object"][-1] == 1.0 and revealed_obs is None:
            revealed_obs = obs
        if done:
            break
    if observability == "none":
        assert revealed_obs is None and env.revealed  # contact happened but nothing is shown
        return
    assert revealed_obs is not None
    target = env.task.channel.revealed
    true = env.object_poses()[target][:3, 3]
    believed = env.object_poses(observed=True)[target][:3, 3]
    channel = revealed_obs["object"][-8:-1] if observability == "full" else revealed_obs["object"][-4:-1]
    if observability == "full":
        np.testing.assert_allclose(channel[:3], true, atol=1e-6)
    elif env.task.channel.partial_cue == "contact_position":
        assert np.linalg.norm(channel[:2] - true[:2]) < 0.045  # on the peg's top, near the peg
    else:
        toward = (true - revealed_obs["object"][:3])[:2]  # from the held piece toward the true receptacle
        assert np.linalg.norm(channel) == pytest.approx(1.0, abs=1e-6)
        assert channel[:2] @ toward / np.linalg.norm(toward) > 0.9
    assert np.linalg.norm(believed - true) > 0.009
    env.close()


def test_observation_and_datagen_contract(envs):
    env = envs[("nut_insertion", "on")]
    obs = env.reset(0)
    assert obs["robot0_eef_pos"].shape == (3,) and obs["robot0_eef_quat"].shape == (4,)
    assert obs["robot0_gripper_qpos"].shape == (2,)
    assert obs["object"].shape == (2 * 7 + 8,)
    action = np.zeros(7)
    action[0] = 0.5
    info = env.datagen_info(action)
    for key in ("eef_pose", "target_pose", "object_poses/nut", "object_poses/peg", "observed_object_poses/peg"):
        assert info[key].shape == (4, 4), key
    assert info["gripper_action"].shape == (1,)
    np.testing.assert_allclose(info["target_pose"][:3, 3], info["eef_pose"][:3, 3] + [0.025, 0, 0])
    args = env.env_args()
    assert json.loads(json.dumps(args)) == args and args["env_name"] == "nut_insertion"


def test_cli_rollout_json_and_errors(capsys):
    from imgen_ros.cli.main import main

    rc = main(["sim", "rollout", "--task", "block_grasp", "--policy", "human", "--noise", "on", "--episodes", "2",
               "--seed", "7", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 2 and summary["successes"] == 2 and summary["interventions"] == 2
    assert summary["human"] == "operator"   # the library default, as in every experiment
    rc = main(["sim", "rollout", "--task", "block_grasp", "--policy", "human", "--human", "oracle", "--noise", "on",
               "--episodes", "1", "--seed", "7", "--json"])
    oracle = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and oracle["human"] == "oracle" and oracle["successes"] == 1
    # the oracle takes over at the generator's own detector and recovers at the expert's speed: fewer steps
    assert oracle["mean_steps"] < summary["mean_steps"]
    with pytest.raises(SystemExit) as usage:
        main(["sim", "rollout", "--task", "block_grasp", "--policy", "human", "--human", "person"])
    assert usage.value.code == 2 and "operator" in capsys.readouterr().err
    assert set(summary) >= {"success_rate", "episodes", "successes", "interventions", "mean_steps", "wall_s"}
    assert main(["sim", "rollout", "--task", "nope", "--episodes", "1"]) == 2
    assert "block_grasp" in capsys.readouterr().err
    assert main(["sim", "rollout", "--task", "block_grasp", "--policy", "robot"]) == 2
    assert "expert, human" in capsys.readouterr().err


def test_fast_target_pose_matches_the_core_action_math():
    from imgen_ros.core.action import action_to_target_pose
    from imgen_ros.sim.env import action_target_pose

    rng = np.random.default_rng(5)
    for _ in range(200):
        current = np.eye(4)
        current[:3, :3] = axisangle_to_matrix(rng.uniform(-2, 2, 3))
        current[:3, 3] = rng.uniform(-1, 1, 3)
        action = rng.uniform(-1.3, 1.3, 7)
        if rng.random() < 0.1:
            action[3:6] = 0.0
        np.testing.assert_allclose(action_target_pose(action, current, DEFAULT_SCALE),
                                   action_to_target_pose(action, current, DEFAULT_SCALE), atol=1e-12)


def test_fresh_environments_replay_a_seed_identically():
    def run() -> np.ndarray:
        env = make_env("nut_insertion", noise="on")
        human = SimulatedHuman(env, ScriptedExpert(env, use_true_poses=False))
        obs = env.reset(31)
        human.reset()
        rows = []
        for _ in range(25):
            obs, *_ = env.step(human.act(obs))
            rows.append(np.concatenate(list(obs.values())))
        env.close()
        return np.array(rows)

    np.testing.assert_array_equal(run(), run())


@pytest.mark.parametrize("yaw", [0.5, -0.7])
def test_privileged_expert_grasps_a_turned_cube(envs, yaw):
    env = envs[("block_grasp", "off")]
    expert = ScriptedExpert(env, use_true_poses=True)
    obs = env.reset(6)
    expert.reset()
    cube = env.body_pose("cube")[:3, 3]
    set_free_pose(env, "cube", cube, np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]))
    mujoco.mj_forward(env.model, env.data)
    done, info = False, {}
    while not done:
        obs, _, done, info = env.step(expert.act(obs))
    assert info["success"]


class _IdlePolicy:
    def reset(self) -> None:
        pass

    def act(self, obs):
        action = np.zeros(7)
        action[6] = -1.0
        return action


def test_simulated_human_takes_over_a_stalled_policy_only_with_patience(envs):
    env = envs[("block_grasp", "on")]
    patient = SimulatedHuman(env, _IdlePolicy(), patience=10)
    result = run_episode(env, patient, 2)
    assert result.success and result.intervened and result.steps > 10
    strict = SimulatedHuman(env, _IdlePolicy())
    result = run_episode(env, strict, 2)
    assert not result.success and not result.intervened
    with pytest.raises(ValueError, match="patience"):
        SimulatedHuman(env, _IdlePolicy(), patience=0)
