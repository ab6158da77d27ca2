"""``imgen train``: BC-RNN-GMM (robomimic) on one or more robomimic hdf5 datasets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgen_ros.cli._args import MEMORY, SEED, THREADS, bounded_float, bounded_int, path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.policy.precision import PRECISIONS


class _DataAction(argparse.Action):
    """``--data F``: append a dataset (weight unset until a following ``--weight``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, "data_items", None) or [])
        items.append([str(values), None])
        namespace.data_items = items


class _WeightAction(argparse.Action):
    """``--weight W``: the sampling weight of the ``--data`` given just before it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, "data_items", None) or [])
        if not items:
            parser.error("--weight must follow the --data it applies to")
        if items[-1][1] is not None:
            parser.error(f"--data {items[-1][0]} already has a --weight")
        items[-1][1] = float(values)  # type: ignore[arg-type]
        namespace.data_items = items


def data_and_weights(items: list[list]) -> tuple[list[str], list[float] | None]:
    """Datasets and weights: no weight anywhere -> None (uniform per sample); else unset weights are 1."""
    paths = [p for p, _ in items]
    if all(w is None for _, w in items):
        return paths, None
    return paths, [1.0 if w is None else float(w) for _, w in items]


EPOCHS = bounded_int(1, 100_000, MEMORY)            # one log row per epoch
STEPS_PER_EPOCH = bounded_int(1, 10_000, MEMORY)    # batch x steps sampler indices are drawn up front
BATCH_SIZE = bounded_int(1, 4096, MEMORY)
SEQ_LENGTH = bounded_int(1, 100, MEMORY)            # LSTM activations grow with batch x seq x hidden
LEARNING_RATE = bounded_float(1e-8, 1.0)
LR_END_FACTOR = bounded_float(1e-6, 1.0)
HIDDEN = bounded_int(1, 4096, MEMORY)
LAYERS = bounded_int(1, 16, MEMORY)
GMM_MODES = bounded_int(1, 100)
EVAL_EVERY = bounded_int(0, 100_000)
EVAL_TRIALS = bounded_int(0, 10_000, MEMORY)
WEIGHT = bounded_float(0.0, 1e6)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=EPOCHS, default=2000, help=EPOCHS.doc("epochs (default 2000, MimicGen)"))
    parser.add_argument("--steps-per-epoch", type=STEPS_PER_EPOCH, default=100,
                        help=STEPS_PER_EPOCH.doc("gradient steps per epoch (default 100)"))
    parser.add_argument("--batch-size", type=BATCH_SIZE, default=100, help=BATCH_SIZE.doc("default 100"))
    parser.add_argument("--seq-length", type=SEQ_LENGTH, default=10,
                        help=SEQ_LENGTH.doc("BC-RNN sequence (default 10)"))
    parser.add_argument("--lr", type=LEARNING_RATE, default=1e-3,
                        help=LEARNING_RATE.doc("learning rate (default 1e-3)"))
    parser.add_argument("--lr-end-factor", type=LR_END_FACTOR, default=1.0,
                        help=LR_END_FACTOR.doc("learning rate of the last epoch as a fraction of --lr, reached by a "
                                               "linear decay over the run (default 1: constant, MimicGen's)"))
    parser.add_argument("--hidden", type=HIDDEN, default=400, help=HIDDEN.doc("LSTM hidden size (default 400)"))
    parser.add_argument("--layers", type=LAYERS, default=2, help=LAYERS.doc("LSTM layers (default 2)"))
    parser.add_argument("--gmm-modes", type=GMM_MODES, default=5, help=GMM_MODES.doc("default 5"))
    parser.add_argument("--eval-every", type=EVAL_EVERY, default=50,
                        help=EVAL_EVERY.doc("evaluate every K epochs (0: never)"))
    parser.add_argument("--eval-trials", type=EVAL_TRIALS, default=50, help=EVAL_TRIALS.doc("rollouts per evaluation"))
    parser.add_argument("--noise", default="on", help="corruption during evaluation rollouts (default on)")
    parser.add_argument("--observability", default="full", choices=("full", "partial", "none"))
    parser.add_argument("--normalize-obs", action="store_true",
                        help="normalize observations (mean/std over the training data; stored in the checkpoint)")
    parser.add_argument("--seed", type=SEED, default=1, help=SEED.doc("default 1"))
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--threads", type=THREADS, default=None,
                        help=THREADS.doc("torch CPU threads (default: torch's choice)"))
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32 (default) or bf16: the LSTM's gradient steps in bfloat16 on the CPU, the rest and "
                             "the checkpoint float32 (fast on CPUs with AVX512-BF16/AMX)")


def _has_checkpoint(folder: Path) -> bool:
    return any((folder / "models").glob("*.pth"))


def check_complete(paths: list[str], allow_incomplete: bool) -> None:
    """Refuse datasets marked incomplete (an interrupted generation/collection); warn with ``allow_incomplete``."""
    from imgen_ros.data.summary import completion, describe_incomplete

    for path in paths:
        try:
            complete, progress = completion(path)
        except (OSError, KeyError):
            continue  # not a dataset: training's own validation names the problem
        if complete:
            continue
        if not allow_incomplete:
            raise CliError(describe_incomplete(path, progress) + " (or pass --allow-incomplete)")
        print(f"imgen: warning: {describe_incomplete(path, progress)}; training on it anyway (--allow-incomplete)",
              file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from imgen_ros.data.outputs import output_dir
    from imgen_ros.policy.train import TrainConfig, train

    items = getattr(args, "data_items", None) or []
    if not items:
        raise CliError("at least one --data FILE is required")
    paths, weights = data_and_weights(items)
    for p in paths:
        if not Path(p).is_file():
            what = ("is a directory, not an hdf5 file" if Path(p).is_dir() else
                    "not a regular file" if Path(p).exists() else "file not found")
            raise CliError(f"--data {p}: {what}")
    check_complete(paths, args.allow_incomplete)
    try:
        cfg = TrainConfig(task=args.task, datasets=paths, weights=weights, out_dir=args.out, epochs=args.epochs,
                          steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                          seq_length=args.seq_length, learning_rate=args.lr,
                          lr_end_factor=args.lr_end_factor, rnn_hidden_dim=args.hidden,
                          rnn_num_layers=args.layers, gmm_modes=args.gmm_modes, eval_every=args.eval_every,
                          eval_trials=args.eval_trials, eval_noise=args.noise,
                          eval_observability=args.observability, normalize_obs=args.normalize_obs, seed=args.seed,
                          device=args.device,
                          num_threads=args.threads, precision=args.precision)
        with output_dir(args.out, overwrite=args.overwrite, inputs=paths, worth_keeping=_has_checkpoint) as work:
            result = train(cfg, work_dir=work)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    summary = {"best_checkpoint": result.best_checkpoint, "best_epoch": result.best_epoch,
               "best_success_rate": result.best_success_rate, "last_checkpoint": result.last_checkpoint,
               "wall_s": round(result.wall_s, 1)}
    print(json.dumps(summary, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a BC-RNN-GMM policy (robomimic) on robomimic hdf5 datasets",
        description="Train robomimic BC-RNN-GMM. Repeat --data to mix files; a --weight after a --data sets "
                    "that file's share of draws (files without one weigh 1; no --weight at all: uniform per "
                    "sample). E.g. --data base.hdf5 --data int.hdf5 --weight 1 draws both files equally.")
    parser.add_argument("--task", required=True, help="sim task for evaluation rollouts (e.g. block_grasp)")
    parser.add_argument("--data", action=_DataAction, type=path_arg, metavar="FILE", help="robomimic hdf5 (repeatable)")
    parser.add_argument("--weight", action=_WeightAction, type=WEIGHT, metavar="W",
                        help=WEIGHT.doc("weight of the preceding --data"))
    parser.add_argument("--out", required=True, type=path_arg,
                        help="output directory (models/, log.csv, train.json, training.png)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --out: the new run is built beside it and swapped in only when it "
                             "succeeded (the old one stays untouched if it fails)")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="train on datasets marked INCOMPLETE (interrupted generation) with a warning")
    add_training_arguments(parser)
    parser.set_defaults(func=run, data_items=None)
