"""The real launch's preflight checks of its numeric arguments."""

from __future__ import annotations

import pytest
from imgen_ros.core.realtime import main as realtime_main
from imgen_ros.launch_args import check_pose_error_seed, check_rt_priority


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("7", 7), (" 2147483647", 2147483647)])
def test_pose_error_seeds_policy_node_accepts_pass(text: str, value: int) -> None:
    assert check_pose_error_seed(text) == value


@pytest.mark.parametrize(("text", "reason"), [("-5", "outside"), ("2147483648", "outside"), ("abc", "not an integer"),
                                              ("1.5", "not an integer"), ("", "not an integer")])
def test_pose_error_seeds_policy_node_would_refuse_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^pose_error_seed:={text}.*{reason}"):
        check_pose_error_seed(text)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("80", 80), ("99", 99)])
def test_rt_priorities_pass(text: str, value: int) -> None:
    assert check_rt_priority(text) == value


@pytest.mark.parametrize("text", ["-1", "100", "abc", "80.0"])
def test_bad_rt_priorities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=f"^arbiter_rt_priority:={text}"):
        check_rt_priority(text)


def test_the_wrapper_refuses_what_the_preflight_refuses(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        realtime_main(["--priority", "100", "--", "true"])
    assert exc.value.code == 2 and "--priority must be in 0..99, got 100" in capsys.readouterr().err


@pytest.mark.parametrize(("seed", "episodes", "message"), [
    ("-1", "0", "seed:=-1 is outside its range [0, 2147483647] (sim_node's seed)"),
    ("0", "abc", "auto_episodes:=abc: not an integer"),
    ("0", "1000001", "auto_episodes:=1000001 is outside its range [0, 1000000] (sim_node's auto_episodes)")])
def test_sim_launch_arguments_sim_node_would_refuse_are_refused(seed: str, episodes: str, message: str) -> None:
    from imgen_ros.launch_args import check_sim_arguments

    with pytest.raises(ValueError) as exc:
        check_sim_arguments({"seed": seed, "auto_episodes": episodes})
    assert str(exc.value) == message
    check_sim_arguments({"seed": "5", "auto_episodes": "10"})
