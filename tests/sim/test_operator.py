"""The simulated operator: what it sees, when it takes over, how it moves, and that it differs from the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core.action import CONTROL_DT
from imgen_ros.sim import make_env
from imgen_ros.sim.expert import ScriptedExpert
from imgen_ros.sim.human import HUMAN_MODELS, SimulatedHuman, make_demonstrator, make_human
from imgen_ros.sim.operator import OperatorConfig, ReactionDelay, SimulatedOperator, Teleoperator
from imgen_ros.sim.operator_motion import MotionConfig
from imgen_ros.sim.operator_watch import Watcher

MAX_STEP = MotionConfig().max_step  # 7.5 mm per 20 Hz step


@pytest.fixture(scope="module")
def envs():
    made = {}

    def get(task: str, noise: str = "on"):
        if (task, noise) not in made:
            made[(task, noise)] = make_env(task, noise=noise)
        return made[(task, noise)]

    yield get
    for env in made.values():
        env.close()


def _episode(env, human, seed: int):
    """Run one episode; returns (actions, is_intervening per step, TCP positions, success)."""
    obs = env.reset(seed)
    human.reset()
    actions, labels, tcp = [], [], [env.eef_pose()[:3, 3].copy()]
    done, info = False, {"success": False}
    while not done:
        action = human.act(obs)
        actions.append(action)
        labels.append(bool(human.is_intervening))
        obs, _, done, info = env.step(action)
        tcp.append(env.eef_pose()[:3, 3].copy())
    return np.array(actions), np.array(labels), np.array(tcp), bool(info["success"])


def _translation_m(actions: np.ndarray, env) -> np.ndarray:
    return np.linalg.norm(actions[:, :3], axis=1) * env.scale.translation_m


def test_reaction_delay_is_lognormal_around_half_a_second_within_its_clip():
    delay = ReactionDelay()
    rng = np.random.default_rng(0)
    steps = np.array([delay.sample_steps(rng) for _ in range(4000)])
    assert steps.min() >= round(0.25 / CONTROL_DT) and steps.max() <= round(1.2 / CONTROL_DT)
    assert np.median(steps) == round(0.5 / CONTROL_DT)  # 10 steps
    assert len(np.unique(steps)) > 8  # a distribution, not a constant
    with pytest.raises(ValueError, match="reaction delay"):
        ReactionDelay(median_s=0.1, low_s=0.25)


def _naive(env):
    """The naive scripted expert: trusts the corrupted poses, 4 cm per step."""
    return ScriptedExpert(env, use_true_poses=False)


def _naive_teleop_speed(env):
    """A naive robot that moves like the operator's demonstrations (what BC trained on them imitates)."""
    return Teleoperator(env, OperatorConfig(seed=99), believed=True)


@pytest.mark.parametrize(("task", "robot"), [("block_grasp", _naive), ("nut_insertion", _naive_teleop_speed),
                                             ("coffee", _naive)])
def test_operator_takes_over_later_than_the_oracle_and_moves_differently(envs, task, robot):
    env = envs(task)
    seed = 3
    oracle = SimulatedHuman(env, robot(env))
    o_actions, o_labels, o_tcp, o_ok = _episode(env, oracle, seed)
    operator = SimulatedOperator(env, robot(env))
    p_actions, p_labels, p_tcp, _ = _episode(env, operator, seed)
    assert o_ok  # (recovery rates: test_operator_recovers_a_teleop_speed_robot_like_the_oracle, bench_human)
    o_take, p_take = int(np.argmax(o_labels)), int(np.argmax(p_labels))
    assert p_take == operator.takeover_step and np.all(p_labels[p_take:]) and not np.any(p_labels[:p_take])
    # it saw something before it acted, and reacted after the sampled delay (5-24 steps at 20 Hz)
    assert operator.cue is not None and 5 <= p_take - operator.cue.step <= 24
    assert p_take != o_take
    # the policy kept acting during the delay: the same actions as the policy alone would take
    np.testing.assert_array_equal(p_actions[:p_take], _policy_actions(env, robot(env), seed, p_take))
    # a teleoperator is slower than the scripted expert: every human step within 7.5 mm
    assert _translation_m(p_actions[p_labels], env).max() <= MAX_STEP + 1e-9
    assert _translation_m(o_actions[o_labels], env).max() > 2 * MAX_STEP
    # and its path is not the oracle's straight lines: TCP positions differ after the take-over
    n = min(len(o_tcp), len(p_tcp))
    assert np.abs(p_tcp[p_take:n] - o_tcp[p_take:n]).max() > 0.01


def _policy_actions(env, policy, seed: int, steps: int) -> np.ndarray:
    obs = env.reset(seed)
    policy.reset()
    out = []
    for _ in range(steps):
        action = policy.act(obs)
        out.append(action)
        obs, *_ = env.step(action)
    return np.array(out)


def test_the_take_over_is_not_the_generators_mistake_detector(envs):
    """On block_grasp the operator sees the misaligned descent before anything touches: at the cue, the
    generator's contact-based detector has not fired."""
    env = envs("block_grasp")
    for seed in range(3):
        operator = SimulatedOperator(env, ScriptedExpert(env, use_true_poses=False))
        obs = env.reset(seed)
        operator.reset()
        while operator.cue is None:
            obs, *_ = env.step(operator.act(obs))
            assert not operator.is_intervening
        assert operator.cue.kind == "approach"
        assert not env.mistake_detected()


def test_same_seed_same_episode_other_operator_seed_other_path(envs):
    env = envs("coffee")
    a = _episode(env, SimulatedOperator(env, ScriptedExpert(env, use_true_poses=False)), 5)
    b = _episode(env, SimulatedOperator(env, ScriptedExpert(env, use_true_poses=False)), 5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[2], b[2])
    c = _episode(env, SimulatedOperator(env, ScriptedExpert(env, use_true_poses=False), OperatorConfig(seed=7)), 5)
    take = int(np.argmax(a[1]))
    n = min(len(a[0]), len(c[0]))
    assert not np.array_equal(a[0][take:n], c[0][take:n])


def test_watcher_sees_a_failed_grasp_and_a_blocked_gripper(envs):
    env = envs("block_grasp", "off")
    watcher = Watcher(env)
    env.reset(0)
    watcher.reset()
    close = np.zeros(7)
    close[6] = 1.0
    cues = []
    for _ in range(10):  # close the gripper in the air: nothing between the fingers
        env.step(close)
        cues.append(watcher.see())
    assert any(c is not None and c.kind == "failed_grasp" for c in cues)
    # open gripper pressed down on top of the cube, off to the side: it stops, touching it
    env.reset(0)
    watcher.reset()
    cube = env.body_pose("cube")[:3, 3]
    seen = None
    for _ in range(120):
        tcp = env.eef_pose()[:3, 3]
        goal = cube + np.array([0.0, 0.035, -0.05])  # one finger lands on the cube's top
        step = np.clip((goal - tcp) / env.scale.translation_m, -0.15, 0.15)
        env.step(np.concatenate([step, np.zeros(3), [-1.0]]))
        seen = watcher.see() or seen
    assert seen is not None and seen.kind in ("approach", "blocked")


@pytest.mark.parametrize("task", ["block_grasp", "nut_insertion", "two_piece_assembly", "coffee",
                                  "nut_peg_assembly"])
def test_operator_demonstrates_every_task_at_teleop_speed(envs, task):
    env = envs(task, "off")
    demonstrator = make_demonstrator("operator", env)
    assert isinstance(demonstrator, Teleoperator)
    demonstrator.is_intervening = False
    actions, _, tcp, ok = _episode(env, demonstrator, 1)
    assert ok
    assert _translation_m(actions, env).max() <= MAX_STEP + 1e-9
    # uneven speed: per-step TCP displacement varies well beyond settling noise
    speeds = np.linalg.norm(np.diff(tcp, axis=0), axis=1)
    moving = speeds[speeds > 0.002]
    assert moving.std() > 0.001


def test_operator_recovers_a_teleop_speed_robot_like_the_oracle(envs):
    """A naive robot moving like the operator's demos (what BC on them imitates), under corruption."""
    env = envs("block_grasp")
    wins = {"operator": 0, "oracle": 0}
    for seed in range(6):
        for name in wins:
            human = make_human(name, env, _naive_teleop_speed(env))
            _, labels, _, ok = _episode(env, human, seed)
            assert labels.any()
            wins[name] += ok
    assert wins["operator"] >= 5 and wins["oracle"] >= 5


def test_human_models_are_named_alike_in_the_library_and_the_cli():
    from imgen_ros.datagen.collect import DEFAULT_HUMAN
    from imgen_ros.datagen.collect import HUMAN_MODELS as COLLECT_MODELS

    assert COLLECT_MODELS == HUMAN_MODELS and DEFAULT_HUMAN == "operator"
    with pytest.raises(ValueError, match="unknown human model"):
        make_human("robot", None, None)
