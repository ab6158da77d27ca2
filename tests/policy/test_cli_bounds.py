"""Every numeric argument of every ``imgen`` command is bounded, documented and refused in one line.

The parser tree is walked, so a numeric argument added later without a bounded type (or without
its range in --help) fails here. Each bound is exercised through ``imgen_ros.cli.main.main``:
too small, too large, non-numeric, NaN and infinity exit 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from imgen_ros.cli._args import Bounded, bounded_float, bounded_int, device_arg, device_unavailable
from imgen_ros.cli.main import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for every leaf command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def _numeric_options() -> list[tuple[tuple[str, ...], str, Bounded]]:
    found = []
    for path, parser in COMMANDS.items():
        for action in parser._actions:
            if isinstance(action.type, Bounded):
                found.append((path, action.option_strings[0], action.type))
    return found


def _parsed_value(args: argparse.Namespace, path: tuple[str, ...], option: str) -> object:
    if option == "--weight":
        return args.data_items[-1][1]
    (action,) = [a for a in COMMANDS[path]._actions if option in a.option_strings]
    return getattr(args, action.dest)


NUMERIC = _numeric_options()


def _required_argv(path: tuple[str, ...], option: str) -> list[str]:
    """The command plus placeholder values for its required arguments (parsing only) before ``option``."""
    argv = list(path) + (["--data", "d.hdf5"] if option == "--weight" else [])
    for action in COMMANDS[path]._actions:
        if action.option_strings and action.required and option not in action.option_strings:
            placeholder = str(int(action.type.lo)) if isinstance(action.type, Bounded) else "x"
            argv += [action.option_strings[0], placeholder]
        elif not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            argv.append(action.choices[0] if action.choices else "x")
    return argv


def test_every_numeric_argument_has_a_bounded_type_and_documents_its_range() -> None:
    assert {" ".join(p) for p in COMMANDS} >= {"train", "eval", "sim rollout", "sim video", "generate mimicgen",
                                                "generate imgen", "collect demos", "collect interventions",
                                                "experiment", "dataset validate", "bag2hdf5", "version"}
    for path, parser in COMMANDS.items():
        for action in parser._actions:
            where = f"imgen {' '.join(path)} {action.option_strings}"
            assert action.type not in (int, float), f"{where}: plain {action.type.__name__} type, use cli._args"
            numeric_default = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
            if numeric_default or isinstance(action.type, Bounded):
                assert isinstance(action.type, Bounded), f"{where}: numeric default but no bounded type"
                assert action.type.range_text in (action.help or ""), f"{where}: --help lacks the range"
                if action.default is not None:
                    assert action.type.lo <= action.default <= action.type.hi, f"{where}: default out of range"
    assert len(NUMERIC) >= 40


def test_memory_sized_arguments_have_upper_bounds_that_say_so() -> None:
    by_name = {(" ".join(p), o): t for p, o, t in NUMERIC}
    for key in [("train", "--batch-size"), ("train", "--seq-length"), ("train", "--epochs"),
                ("train", "--eval-trials"), ("eval", "--trials"), ("generate imgen", "--n"),
                ("generate mimicgen", "--workers"), ("experiment", "--workers"), ("sim rollout", "--episodes"),
                ("collect demos", "--episodes")]:
        bounded = by_name[key]
        assert bounded.hi <= 100_000 and "memory" in bounded.why, key
    assert by_name[("train", "--batch-size")].hi == 4096


@pytest.mark.parametrize(("path", "option", "bounded"), NUMERIC,
                         ids=[f"{' '.join(p)} {o}" for p, o, _ in NUMERIC])
def test_out_of_range_and_non_numeric_values_exit_2_with_one_line(path: tuple[str, ...], option: str,
                                                                 bounded: Bounded,
                                                                 capsys: pytest.CaptureFixture) -> None:
    too_small = str(int(bounded.lo) - 1) if bounded.kind is int else str(bounded.lo - max(1.0, abs(bounded.lo)))
    too_large = str(int(bounded.hi) + 1) if bounded.kind is int else str(bounded.hi * 2 + 1)
    for value in (too_small, too_large, "abc", "nan", "inf", "1e400"):
        with pytest.raises(SystemExit) as exit_info:
            main([*_required_argv(path, option), option, value])
        assert exit_info.value.code == 2, (path, option, value)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert f"argument {option}" in lines[0] and bounded.range_text in lines[0] and repr(value) in lines[0]
    # both ends of the range are accepted
    for value in (bounded.lo, bounded.hi):
        text = str(int(value)) if bounded.kind is int else repr(float(value))
        args = build_parser().parse_args([*_required_argv(path, option), option, text])
        assert _parsed_value(args, path, option) == value


def test_bounded_types_refuse_what_argparse_would_misread() -> None:
    count = bounded_int(1, 10)
    assert count("10") == 10 and count(" 3") == 3
    for text in ("1e1", "2.0", "0", "11", "", "0x5", "\u0663", "\uff10\uff11"):  # Arabic-Indic 3, full-width 01
        with pytest.raises(argparse.ArgumentTypeError, match=r"expected an integer in \[1, 10\]"):
            count(text)
    rate = bounded_float(0.0, 1.0)
    assert rate("0.5") == 0.5 and rate("1e-3") == 1e-3
    for text in ("nan", "inf", "-0.1", "1.5", "half", "\uff10.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"expected a finite number in \[0, 1\]"):
            rate(text)
    with pytest.raises(ValueError, match="empty range"):
        bounded_int(5, 1)


def test_help_shows_ranges_and_a_real_process_refuses_in_one_line(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--batch-size BATCH_SIZE default 100 (integer in [1, 4096], max set by memory)" in help_text
    assert "--lr LR learning rate (default 1e-3; number in [1e-08, 1])" in help_text
    res = subprocess.run([sys.executable, "-m", "imgen_ros.cli.main", "train", "--task", "block_grasp", "--out", "x",
                          "--batch-size", "1000000"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["imgen train: error: argument --batch-size: expected an integer in [1, 4096], "
                                       "got '1000000' (see 'imgen train --help')"]


@pytest.mark.parametrize("device", ["meta", "mps", "cpu:99", "cpu:0", "CUDA", "cuda:", "cuda:-1", "cuda:x", ""])
@pytest.mark.parametrize("policy", ["expert", "expert:true", "run/models/last.pth"])
def test_eval_refuses_a_device_imgen_does_not_run_on_at_parse_time(device: str, policy: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """torch.device() takes meta/mps/cpu:99: a checkpoint then failed mid-rollout, the expert ran with exit 0."""
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--task", "block_grasp", "--policy", policy, "--trials", "1", "--device", device])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"imgen eval: error: argument --device: not a torch device imgen runs on: expected "
                                f"cpu, cuda or cuda:N, got {device!r} (see 'imgen eval --help')"]


def test_device_arg_accepts_cpu_and_cuda_devices() -> None:
    for device in ("cpu", "cuda", "cuda:0", "cuda:12"):
        assert device_arg(device) == device


def test_eval_refuses_a_cuda_device_this_machine_lacks_for_the_expert_too(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    import torch

    argv = ["eval", "--task", "block_grasp", "--policy", "expert", "--trials", "1", "--device"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*argv, "cuda"]) == 2
    assert capsys.readouterr().err.splitlines() == ["imgen: error: --device 'cuda': CUDA is not available on this "
                                                    "machine"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert main([*argv, "cuda:1"]) == 2
    assert capsys.readouterr().err.splitlines() == ["imgen: error: --device 'cuda:1': this machine has 1 CUDA "
                                                    "device(s) (cuda:0 to cuda:0)"]
    assert device_unavailable("cuda:0") is None and device_unavailable("cpu") is None
