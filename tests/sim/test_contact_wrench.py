"""The simulated FR3 wrench estimate (sim.wrench) and the Block Grasp reveal from the contact detector
(core.contact): the exact wrench against MuJoCo's contact forces, libfranka's sign, the estimation
error, agreement of the detector with MuJoCo's finger-cube contacts, the table, and the cube's yaw."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from imgen_ros.core.action import delta_to_action
from imgen_ros.core.pose import pos_quat_from_pose
from imgen_ros.core.symmetry import canonical_cube_rotation, cube_yaw
from imgen_ros.sim import make_env
from imgen_ros.sim.contacts import BodyGeoms
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.human import SimulatedHuman
from imgen_ros.sim.tasks.block_grasp import CUBE_HALF
from imgen_ros.sim.tasks.common import set_free_pose, yaw_quat_wxyz
from imgen_ros.sim.wrench import WrenchErrorConfig, contact_wrench

CUBE_MASS = 0.15
AGREEMENT_STEPS = 2   # the detector fires within this many control steps of MuJoCo's first contact


@pytest.fixture(scope="module")
def envs():
    made = {n: make_env("block_grasp", noise=n) for n in ("off", "on")}
    yield made
    for env in made.values():
        env.close()


def _reference_wrench(env, point: np.ndarray) -> np.ndarray:
    """Contact by contact with mj_contactForce and np.cross, over the hand's and fingers' collision geoms."""
    m, d = env.model, env.data
    robot = BodyGeoms.of(m, "hand").mask   # the hand and both fingers
    out, local = np.zeros(6), np.zeros(6)
    for i in range(d.ncon):
        c = d.contact[i]
        if robot[c.geom1] == robot[c.geom2]:
            continue
        mujoco.mj_contactForce(m, d, i, local)
        frame = c.frame.reshape(3, 3)
        force, torque = frame.T @ local[:3], frame.T @ local[3:]
        if robot[c.geom1]:
            force, torque = -force, -torque
        out[:3] += force
        out[3:] += np.cross(c.pos - point, force) + torque
    return out


def test_contact_wrench_is_the_sum_of_mujoco_contact_forces(envs):
    """contact_wrench, and the estimate without its error (libfranka's sign: the negative), against
    MuJoCo's contact forces one by one."""
    env = envs["on"]
    human = SimulatedHuman(env, ScriptedExpert(env, use_true_poses=False))
    touching = 0
    try:
        for seed in range(3):
            obs, done = env.reset(seed), False
            human.reset()
            while not done:
                obs, _, done, _ = env.step(human.act(obs))
                tcp = env.eef_pose()[:3, 3]
                reference = _reference_wrench(env, tcp)
                np.testing.assert_allclose(contact_wrench(env.model, env.data, tcp), reference, atol=1e-9)
                env.wrench.config = WrenchErrorConfig(enabled=False)
                np.testing.assert_allclose(env.wrench.sample(), -reference, atol=1e-9)
                env.wrench.config = WrenchErrorConfig()
                touching += bool(np.any(reference))
    finally:
        env.wrench.config = WrenchErrorConfig()
    assert touching > 10


def _exact(env) -> None:
    env.wrench.config = WrenchErrorConfig(enabled=False)


def test_the_estimate_has_libfrankas_sign(envs):
    """O_F_ext_hat_K is what the robot applies to the world: holding the cube up reads +m g, a finger
    pressing down on it reads f_z < 0."""
    env = envs["off"]
    _exact(env)
    try:
        expert = ScriptedExpert(env, use_true_poses=True)
        obs, done = env.reset(3), False
        expert.reset()
        while not done:
            obs, _, done, info = env.step(expert.act(obs))
        assert info["success"]
        hold = np.zeros(7)
        hold[6] = 1.0
        for _ in range(4):
            env.step(hold)
        np.testing.assert_allclose(env.external_wrench()[:3], [0.0, 0.0, CUBE_MASS * 9.81], atol=0.1)

        env.reset(3)
        cube = env.body_pose("cube")[:3, 3]
        above_cube = env.eef_pose()
        above_cube[:3, 3] = cube + np.array([0.0, 0.045, 0.10])   # one finger right above the cube
        for _ in range(40):
            dpos = above_cube[:3, 3] - env.eef_pose()[:3, 3]
            dpos = dpos * min(1.0, 0.02 / max(np.linalg.norm(dpos), 1e-9))
            env.step(delta_to_action(dpos, np.zeros(3), -1.0, env.scale))
            above_cube[2, 3] -= 0.01
            if env.touching("fingers", "cube"):
                break
        env.step(delta_to_action(np.array([0.0, 0.0, -0.01]), np.zeros(3), -1.0, env.scale))
        assert env.touching("fingers", "cube") and env.external_wrench()[2] < -10.0
    finally:
        env.wrench.config = WrenchErrorConfig()


def test_the_estimation_error_is_seeded_and_as_configured(envs):
    env = envs["off"]
    cfg = env.wrench.config
    hold = np.zeros(7)
    hold[6] = -1.0

    def free_samples(seed: int) -> np.ndarray:
        env.reset(seed)
        rows = []
        for _ in range(60):   # the arm holds still in free space: only the error is left
            env.step(hold)
            rows.append(env.external_wrench())
        return np.array(rows)

    a, again, other = free_samples(11), free_samples(11), free_samples(12)
    np.testing.assert_array_equal(a, again)
    assert not np.allclose(a, other)
    bias = a[:, :3].mean(axis=0)
    assert np.all(np.abs(bias) <= cfg.bias_force_n + 0.5) and np.linalg.norm(bias) > 0.1
    spread = a[:, :3].std(axis=0)
    assert np.all((spread > 0.6 * cfg.noise_force_n) & (spread < 1.4 * cfg.noise_force_n)), spread


def test_detector_agrees_with_finger_cube_contacts(envs):
    """20 naive-expert and 20 simulated-human episodes per noise mode: the reveal (detector on the
    simulated estimate, with its error) against MuJoCo's first finger-cube contact, checked at the
    same 100 Hz (a contact can begin and end inside one 50 ms control step)."""
    agree, episodes, lags = 0, 0, []
    for noise in ("off", "on"):
        env = envs[noise]
        touched = [False]
        record = env._on_chunk

        def record_and_check(env=env, touched=touched, record=record) -> None:
            record()
            touched[0] = touched[0] or env.touching("fingers", "cube")

        env._on_chunk = record_and_check
        try:
            for policy in ("expert", "human"):
                expert = ScriptedExpert(env, use_true_poses=False)
                agent = SimulatedHuman(env, expert) if policy == "human" else expert
                for seed in range(7, 27):
                    obs, done, step = env.reset(seed), False, 0
                    agent.reset()
                    touched[0] = False
                    first_touch = first_reveal = None
                    while not done:
                        obs, _, done, _ = env.step(agent.act(obs))
                        step += 1
                        if touched[0] and first_touch is None:
                            first_touch = step
                        if env.revealed and first_reveal is None:
                            first_reveal = step
                    episodes += 1
                    if first_touch is None or first_reveal is None:
                        agree += first_touch is None and first_reveal is None
                    else:
                        lags.append(first_reveal - first_touch)
                        agree += abs(first_reveal - first_touch) <= AGREEMENT_STEPS
        finally:
            env._on_chunk = record
    print(f"contact agreement: {agree}/{episodes} episodes within {AGREEMENT_STEPS} steps; "
          f"reveal lag (steps) {np.bincount(np.asarray(lags) - min(lags)).tolist()} from {min(lags)}")
    assert episodes == 80 and len(lags) >= 60
    assert agree / episodes >= 0.95
    assert min(lags) >= 0 and np.mean(lags) <= 1.5   # never before the contact, about one step after


def test_a_table_touch_is_a_mistake_but_reveals_nothing(envs):
    env = envs["off"]
    env.reset(5)
    target = env.eef_pose()[:3, 3].copy()
    cube = env.body_pose("cube")[:3, 3]
    target[:2] = cube[:2] + np.array([-0.12, 0.0])   # 12 cm in front of the cube
    target[2] = -0.02                      # below the table top: the fingers land on it
    pressed = False
    for _ in range(40):
        dpos = target - env.eef_pose()[:3, 3]
        dpos = dpos * min(1.0, 0.02 / max(np.linalg.norm(dpos), 1e-9))
        env.step(delta_to_action(dpos, np.zeros(3), -1.0, env.scale))
        pressed = pressed or env.touching("hand", "table")
    assert pressed and env.mistake_detected() and env.detector.force_n > 20.0
    assert not env.revealed and not env.touching("fingers", "cube")


def test_cube_yaw_is_random_and_observed_canonically(envs):
    env = envs["off"]
    yaws = []
    for seed in range(40):
        obs = env.reset(seed)
        rot = env.body_pose("cube")[:3, :3]
        yaws.append(cube_yaw(rot))
        _, quat = pos_quat_from_pose(np.vstack([np.column_stack([canonical_cube_rotation(rot), np.zeros(3)]),
                                                [0, 0, 0, 1]]))
        np.testing.assert_allclose(obs["object"][3:7], quat, atol=1e-9)
    yaws = np.degrees(yaws)
    assert np.all(np.abs(yaws) <= 45.0) and yaws.min() < -30.0 and yaws.max() > 30.0

    # the same cube turned by 90 deg is observed identically
    env.reset(0)
    before = env.observation()["object"][3:7]
    pos = env.body_pose("cube")[:3, 3]
    set_free_pose(env, "cube", pos, yaw_quat_wxyz(cube_yaw(env.body_pose("cube")[:3, :3]) + np.pi / 2))
    mujoco.mj_forward(env.model, env.data)
    np.testing.assert_allclose(env.observation()["object"][3:7], before, atol=1e-9)
    assert pos[2] == pytest.approx(CUBE_HALF, abs=1e-3)


def test_simulated_human_recovers_yawed_cubes(envs):
    env = envs["on"]
    human = SimulatedHuman(env, ScriptedExpert(env, use_true_poses=False))
    results, yaws = [], []
    for seed in range(100, 112):
        obs, done = env.reset(seed), False
        human.reset()
        yaws.append(abs(cube_yaw(env.body_pose("cube")[:3, :3])))
        info = {}
        while not done:
            obs, _, done, info = env.step(human.act(obs))
        results.append(info["success"] and human.interventions == 1 and env.revealed)
    assert max(yaws) > np.radians(25.0)
    assert all(results), results
