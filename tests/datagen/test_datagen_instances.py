"""I-MG control flow on a tiny kinematic stand-in env: several mistake/recovery instances per episode."""

from __future__ import annotations

import numpy as np
from imgen_ros.core.action import DEFAULT_SCALE, action_to_target_pose
from imgen_ros.core.pose import make_pose
from imgen_ros.data.episode import ACTION_MODE_HUMAN, ACTION_MODE_ROBOT
from imgen_ros.datagen.episodes import RECOVERED, GenerationParams, generate_imgen
from imgen_ros.datagen.replay import ReplayConfig
from imgen_ros.datagen.segments import Intervention, Segment
from imgen_ros.datagen.sources import InterventionPool
from imgen_ros.sim.task import SubtaskSpec


class PointEnv:
    """The TCP is a point that goes exactly to each action's target. Subtask 0 ends when the TCP is at
    object ``a`` (signal ``at_a``), the task succeeds when it then reaches ``b``; going below z = 0 is a
    mistake."""

    subtasks = (SubtaskSpec("a", "at_a"), SubtaskSpec("b", None))
    horizon = 200
    scale = DEFAULT_SCALE

    def reset(self, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        self.objects = {"a": make_pose([0.3 + rng.uniform(-0.05, 0.05), 0.0, 0.1]),
                        "b": make_pose([0.5, 0.2 + rng.uniform(-0.05, 0.05), 0.1])}
        self.eef = make_pose([0.4, 0.1, 0.3])
        self.gripper_command = -1.0
        self.reached_a = False
        self.steps = 0
        return self.observation()

    def observation(self) -> dict:
        return {"robot0_eef_pos": self.eef[:3, 3].copy()}

    def _near(self, name: str) -> bool:
        return bool(np.linalg.norm(self.eef[:3, 3] - self.objects[name][:3, 3]) < 0.01)

    def step(self, action):
        self.eef = action_to_target_pose(action, self.eef, self.scale)
        self.gripper_command = 1.0 if action[6] > 0 else -1.0
        self.reached_a = self.reached_a or self._near("a")
        self.steps += 1
        return self.observation(), float(self.is_success()), self.is_success() or self.steps >= self.horizon, {}

    def is_success(self) -> bool:
        return self.reached_a and self._near("b")

    def mistake_detected(self) -> bool:
        return bool(self.eef[2, 3] < 0.0)

    def eef_pose(self):
        return self.eef.copy()

    def object_poses(self, observed: bool = False) -> dict:
        return {k: v.copy() for k, v in self.objects.items()}

    def get_state(self):
        return self.eef[:3, 3].copy()

    def datagen_info(self, action=None) -> dict:
        return {"eef_pose": self.eef.copy(), "target_pose": self.eef.copy(), "gripper_action": np.array([-1.0]),
                "subtask_term_signals/at_a": np.array(float(self.reached_a))}


class DivePolicy:
    """Always moves straight down: a mistake in every subtask."""

    def reset(self) -> None:
        pass

    def act(self, obs):
        return np.array([0, 0, -1.0, 0, 0, 0, -1.0])


def piece(subtask: int, ref: str, obj_pose, offsets) -> Segment:
    targets = np.stack([make_pose(obj_pose[:3, 3] + o) for o in offsets])
    return Segment("demo_0", subtask, ref, 0, len(offsets), targets, -np.ones(len(offsets)), obj_pose, targets[0])


def test_recovery_hands_back_and_a_second_mistake_is_recovered_again():
    src_a, src_b = make_pose([0.3, 0.0, 0.1]), make_pose([0.5, 0.2, 0.1])
    approach = [np.array([0, 0, z]) for z in (0.06, 0.03, 0.0)]
    pool = InterventionPool([Intervention("demo_0", [], [piece(0, "a", src_a, approach)]),
                             Intervention("demo_1", [], [piece(1, "b", src_b, approach)])])
    params = GenerationParams(replay=ReplayConfig(action_noise=0.0, num_interp_steps=8, hold_steps=0))
    result = generate_imgen(PointEnv(), DivePolicy(), pool, attempt=0, seed=5, params=params)
    assert result.outcome == RECOVERED and result.instances == 2
    modes = result.episode.action_modes
    # recovery of subtask 0 (human), hand-back: the policy dives again (robot), recovery of subtask 1 (human)
    runs = [int(m) for i, m in enumerate(modes) if i == 0 or modes[i - 1] != m]
    assert runs == [ACTION_MODE_HUMAN, ACTION_MODE_ROBOT, ACTION_MODE_HUMAN]
    assert result.episode.attrs["source_demos"] == ["demo_0", "demo_1"]
    assert result.episode.rewards[-1] == 1.0


def test_recovery_that_misses_its_subtask_fails_the_attempt():
    src_a = make_pose([0.3, 0.0, 0.1])
    short = [np.array([0, 0, 0.2])]  # never reaches object a
    pool = InterventionPool([Intervention("demo_0", [], [piece(0, "a", src_a, short)])])
    params = GenerationParams(replay=ReplayConfig(action_noise=0.0, hold_steps=0))
    result = generate_imgen(PointEnv(), DivePolicy(), pool, attempt=0, seed=5, params=params)
    assert result.outcome == "failed" and result.episode is None and result.instances == 1


def test_a_human_who_finished_the_task_is_replayed_to_the_end():
    """Nut-and-Peg's case: the source human took over in subtask 0 and went on through subtask 1. Both of
    its pieces are replayed, each adapted to its own object; the policy (which dives) never acts again."""
    src_a, src_b = make_pose([0.3, 0.0, 0.1]), make_pose([0.5, 0.2, 0.1])
    approach = [np.array([0, 0, z]) for z in (0.06, 0.03, 0.0)]
    whole_run = Intervention("demo_0", [], [piece(0, "a", src_a, approach), piece(1, "b", src_b, approach)])
    params = GenerationParams(replay=ReplayConfig(action_noise=0.0, num_interp_steps=8, hold_steps=0))
    result = generate_imgen(PointEnv(), DivePolicy(), InterventionPool([whole_run]), attempt=0, seed=5,
                            params=params)
    assert result.outcome == RECOVERED and result.instances == 1
    assert set(result.episode.action_modes.tolist()) == {ACTION_MODE_HUMAN}
    assert result.episode.attrs["source_demos"] == ["demo_0"]
