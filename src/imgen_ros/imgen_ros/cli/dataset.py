"""``imgen dataset``: inspect, validate and merge robomimic/imgen hdf5 datasets."""

from __future__ import annotations

import argparse
import json
import sys

from imgen_ros.cli._args import path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.data.merge import merge_datasets
from imgen_ros.data.summary import format_summary, summarize
from imgen_ros.data.validate import DatasetError, validate_dataset


def run_info(args: argparse.Namespace) -> int:
    try:
        summary = summarize(args.file)
    except ValueError as exc:  # DatasetError, or a malformed JSON attribute
        raise CliError(str(exc)) from exc
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Check every file: ``<file>: ok`` on stdout, or one ``imgen: error: invalid dataset ...`` line on
    stderr naming its problems; exit 2 at the end if any file was invalid."""
    invalid = 0
    for path in args.files:
        try:
            validate_dataset(path, require_imgen=args.imgen)
        except DatasetError as exc:
            invalid += 1
            print(f"imgen: error: {exc}", file=sys.stderr, flush=True)
            continue
        print(f"{path}: ok", flush=True)
    return 2 if invalid else 0


def run_merge(args: argparse.Namespace) -> int:
    try:
        counts = merge_datasets(args.inputs, args.out, overwrite=args.overwrite)
    except (DatasetError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    for path, n in counts.items():
        print(f"{path}: {n} demos")
    print(f"wrote {args.out}: {sum(counts.values())} demos")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dataset", help="inspect, validate and merge hdf5 datasets")
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="demos, lengths, intervention fraction, sources")
    info.add_argument("file", type=path_arg)
    info.add_argument("--json", action="store_true", help="one JSON object")
    info.set_defaults(func=run_info)
    validate = sub.add_parser("validate", help="check files; name every problem")
    validate.add_argument("files", nargs="+", type=path_arg)
    validate.add_argument("--imgen", action="store_true", help="also require per-step action_modes")
    validate.set_defaults(func=run_validate)
    merge = sub.add_parser("merge", help="merge datasets of one task into a new file")
    merge.add_argument("inputs", nargs="+", type=path_arg)
    merge.add_argument("--out", required=True, type=path_arg,
                       help="new hdf5 (written beside it, renamed into place when complete)")
    merge.add_argument("--overwrite", action="store_true", help="replace an existing --out (never one of the inputs)")
    merge.set_defaults(func=run_merge)
