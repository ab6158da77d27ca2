"""The ``imgen`` command: the offline pipeline (simulate, collect, generate, train, evaluate).

Each module in ``imgen_ros.cli`` that defines ``register(subparsers)`` contributes one
top-level command group; this file only discovers and dispatches them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys

import imgen_ros.cli as cli_package
from imgen_ros.cli._args import OneLineErrorParser


class CliError(Exception):
    """A user-facing error: printed as ``imgen: error: ...`` with exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="imgen", description="Interventional MimicGen for the Franka FR3.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if info.name in ("main", "__init__") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"imgen_ros.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def _command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)command parser that ``argv`` selects, e.g. ``imgen collect demos``'s: it names the
    right ``--help`` when an argument is not recognized."""
    while True:
        choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
        position = next((i for i, token in enumerate(argv) if token in choices), None)
        if position is None:
            return parser
        parser, argv = choices[argv[position]], argv[position + 1:]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _command_parser(parser, argv).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        result = args.func(args)
    except CliError as exc:
        print(f"imgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imgen: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a path the system refuses (too long, a loop of links) or a failing disk
        print(f"imgen: error: {_os_error(exc)}", file=sys.stderr)
        return 2 if exc.errno in _BAD_PATH_ERRNOS else 1
    except UnicodeEncodeError as exc:  # a path that is not UTF-8 reached a library that needs it
        print(f"imgen: error: a path or name is not valid UTF-8 ({exc.reason}); rename it", file=sys.stderr)
        return 2
    return int(result or 0)


# errors of the path given, not of the machine: the user's input (exit 2, as for other bad input)
_BAD_PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR})


def _short(name: object, keep: int = 80) -> str:
    text = os.fsdecode(name) if isinstance(name, (str, bytes)) else str(name)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= keep else f"{text[:keep // 2]}...{text[-keep // 2:]} ({len(text)} characters)"


def _os_error(exc: OSError) -> str:
    """One line: the path (shortened) and the system's reason."""
    reason = exc.strerror or str(exc)
    return f"{_short(exc.filename)}: {reason}" if exc.filename is not None else reason


if __name__ == "__main__":
    # Run the imported module's main: under ``python -m`` this file is ``__main__``, whose CliError
    # is not the ``imgen_ros.cli.main.CliError`` that the commands raise.
    from imgen_ros.cli.main import main as _main

    sys.exit(_main())
