"""sim.task_digest: a task's definition fingerprint changes with its scene and settings, not with prose."""

from __future__ import annotations

import pytest
from imgen_ros.sim import TASK_NAMES
from imgen_ros.sim import task_digest as digest_module
from imgen_ros.sim.task_digest import task_digest, task_settings
from imgen_ros.sim.tasks.nut_insertion import NutInsertion


@pytest.fixture
def fresh_digests():
    digest_module.task_digest.cache_clear()
    yield
    digest_module.task_digest.cache_clear()


def test_every_task_has_its_own_stable_digest(fresh_digests) -> None:
    digests = {name: task_digest(name) for name in TASK_NAMES}
    assert len(set(digests.values())) == len(TASK_NAMES)
    assert all(len(d) == 16 and int(d, 16) >= 0 for d in digests.values())
    digest_module.task_digest.cache_clear()
    assert {name: task_digest(name) for name in TASK_NAMES} == digests  # rebuilt from scratch: the same


def test_the_digest_follows_the_scene_and_the_settings_but_not_the_prose(fresh_digests,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    before = task_digest("nut_insertion")
    assert task_settings("nut_insertion")["hole_half"] == NutInsertion.hole_half
    with monkeypatch.context() as patch:
        patch.setattr(NutInsertion, "paper_deviations", ("reworded",))
        digest_module.task_digest.cache_clear()
        assert task_digest("nut_insertion") == before
    with monkeypatch.context() as patch:
        patch.setattr(NutInsertion, "hole_half", NutInsertion.hole_half + 0.001)  # the scene: a looser nut
        digest_module.task_digest.cache_clear()
        assert task_digest("nut_insertion") != before
    with monkeypatch.context() as patch:
        patch.setattr(NutInsertion, "align_tol", NutInsertion.align_tol * 2)  # a setting: the success tolerance
        digest_module.task_digest.cache_clear()
        assert task_digest("nut_insertion") != before
    digest_module.task_digest.cache_clear()
    assert task_digest("nut_insertion") == before


def test_the_digest_follows_module_constants_of_the_task_and_of_the_shared_simulation(
        fresh_digests, monkeypatch: pytest.MonkeyPatch) -> None:
    """A success height or a placement region written as a module constant, and the control period every
    task steps at, are part of the definition."""
    from imgen_ros.sim import env
    from imgen_ros.sim.tasks import block_grasp

    before = {name: task_digest(name) for name in ("block_grasp", "nut_insertion")}
    for module, name, value in ((block_grasp, "LIFT_SUCCESS_Z", block_grasp.LIFT_SUCCESS_Z + 0.01),
                                (block_grasp, "REGION_X", (0.0, 0.1)), (env, "CONTROL_DT", env.CONTROL_DT / 2)):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, value)
            digest_module.task_digest.cache_clear()
            assert task_digest("block_grasp") != before["block_grasp"], name
            changed = task_digest("nut_insertion") != before["nut_insertion"]
            assert changed == (module is env), name  # another task's own constants are not nut_insertion's
    digest_module.task_digest.cache_clear()
    assert {name: task_digest(name) for name in before} == before


def test_an_unknown_task_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        task_digest("nope")
