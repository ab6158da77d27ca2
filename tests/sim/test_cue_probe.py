"""The partial-observability cue probe: the revealed truth grounds a recovery, the belief does not."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.sim import make_env
from imgen_ros.sim.cue_probe import CueGroundedExpert, cue_error_mm, main, position_cue_env, probe
from imgen_ros.sim.tasks.nut_insertion import HOLE_HALF, PEG_HALF

SEEDS = (1000000, 1000001)


def test_recovery_on_the_truth_inserts_and_on_the_belief_does_not() -> None:
    truth = probe("nut_insertion", "truth", SEEDS)
    believed = probe("nut_insertion", "believed", SEEDS)
    assert (truth.successes, truth.revealed) == (2, 2)
    assert (believed.successes, believed.revealed) == (0, 2)


def test_the_cue_lies_near_the_peg_but_not_on_its_axis() -> None:
    errors = cue_error_mm("nut_insertion", SEEDS)
    assert len(errors) == 2
    # within the peg's top (2 x 2 cm) but, on these seeds, outside the hole's 2.5 mm clearance
    assert np.all(errors > 2.5) and np.all(errors < 15.0)


def test_the_cue_grounded_belief_moves_only_the_revealed_object_to_the_cue() -> None:
    env = make_env("nut_insertion", noise="on", observability="partial")
    env.reset(SEEDS[0])
    expert = CueGroundedExpert(env, "cue")
    assert np.allclose(expert.poses()["peg"], env.object_poses(observed=True)["peg"])   # before the reveal
    env.revealed, env.cue[:3] = True, (0.5, 0.05, 0.3)
    poses = expert.poses()
    assert np.allclose(poses["peg"][:2, 3], (0.5, 0.05))
    assert poses["peg"][2, 3] == pytest.approx(env.object_poses(observed=True)["peg"][2, 3])
    assert np.allclose(poses["nut"], env.object_poses(observed=True)["nut"])


def test_bad_inputs_are_refused() -> None:
    env = make_env("nut_insertion", noise="on", observability="partial")
    with pytest.raises(ValueError, match="belief source"):
        CueGroundedExpert(env, "oracle")
    with pytest.raises(ValueError, match=r"no contact-position cue.*direction"):
        probe("two_piece_assembly", "cue", SEEDS)
    for argv in (["--task", "nope"], ["--episodes", "0"], ["--seed0", "-1"], ["--task", "two_piece_assembly"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_a_looser_nut_has_the_clearance_asked_for_and_the_default_keeps_the_task_s() -> None:
    def hole_half(env) -> float:
        return float(env.model.geom("nut_wall_py").size[0])

    default, looser = position_cue_env("nut_insertion"), position_cue_env("nut_insertion", 0.00675)
    assert hole_half(default) == pytest.approx(HOLE_HALF)
    assert hole_half(looser) == pytest.approx(PEG_HALF + 0.00675)
    assert looser.task.align_tol == pytest.approx(0.00775)
    assert default.task.align_tol == pytest.approx(0.006)
    for bad in (0.0, -0.001, 0.03):
        with pytest.raises(ValueError, match="clearance must be in"):
            position_cue_env("nut_insertion", bad)
    with pytest.raises(ValueError, match="nut_insertion only"):
        position_cue_env("block_grasp", 0.005)
    with pytest.raises(SystemExit):
        main(["--clearance-mm", "nan"])


@pytest.mark.parametrize("argv", [["--clearance-mm", "40"], ["--episodes", "x"], ["--bogus"]])
def test_usage_errors_are_one_line_with_the_range_the_probe_accepts(argv: list[str],
                                                                   capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    if argv[0] == "--clearance-mm":
        assert "in [0, 20]" in err  # the nut's real limit at parse time, not [0, 1000]
