"""``imgen experiment NAME``: build every dataset variant, train, evaluate, report (a paper table).

The experiment is a graph of single-core steps (collect, generate, train, evaluate; see
``experiment_jobs``) run by a pool of ``scale.workers`` processes as soon as their inputs exist.
Each finished step leaves ``steps/<key>.json`` (its arguments, lineage, run id, the run ids of the
inputs it read, and its summary); a rerun skips a step whose record has the same lineage, whose
outputs exist and which read the very runs of its inputs that are current, so an interrupted
experiment resumes where it stopped and a step after one that ran again runs again. The lineage
is a digest of the step function's code, its arguments, its task's definition (``sim.task_digest``)
and its inputs' lineages: a step whose upstream data, policy, task or step code changed reruns, and
so does everything after it (library code below the step functions is not covered). A step's outputs
are present only with what its record names (a training's best checkpoint). When a step fails, the
steps already running finish and are recorded before the run stops. ``reuse`` (``--reuse DIR``)
takes over the finished steps of another experiment's directory that this one would run with the
same lineage (e.g. ``seeds`` and ``action_noise`` on top of ``table1``'s
Nut Insertion data), under the same rule.

Humans: source demos and interventions come from the simulated human ``human`` (``operator`` by
default: takes over on what it sees, late, and moves like a teleoperator; ``oracle``: the scripted
expert taking over on the generator's own mistake detector), see ``imgen_ros.sim.human``.

Seeds: everything derives from ``--seed S``: collection/generation seeds ``1000*S + k``, the
training seed ``S + 1`` for every variant (``S + k`` for a recipe with ``train_seed=k``: the
``seeds`` experiment), and the fixed evaluation seeds
``EVAL_SEED_BASE + i`` (identical scenes and corruptions for every variant; never used for data
or checkpoint selection).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from imgen_ros.data.outputs import remove_path, swap_in
from imgen_ros.datagen.collect import DEFAULT_HUMAN, HUMAN_MODELS
from imgen_ros.datagen.episodes import DEFAULT_REVEAL_GRACE_STEPS
from imgen_ros.policy.evaluate import EVAL_SEED_BASE, SELECTION_SEED_BASE
from imgen_ros.policy.experiment_spec import (
    SCALES,
    SOURCE_DEMOS,
    SOURCE_INTERVENTIONS,
    Column,
    Experiment,
    Recipe,
    Scale,
    experiments,
    recipes,
)
from imgen_ros.policy.precision import cpu_has_native_bf16, runnable_precision
from imgen_ros.sim.task_digest import task_digest

EXPERIMENT_NAMES = ("block_grasp", "table1", "table2", "table3", "scaling", "budget", "seeds", "action_noise")
ARTIFACT_OPTIONS = ("action_noise",)  # ``NAME:option=value`` suffixes of a generated artifact


@dataclass
class Step:
    key: str
    fn: str
    kwargs: dict[str, Any]
    deps: tuple[str, ...] = ()
    label: str = ""


@dataclass
class Plan:
    experiment: Experiment
    scale: Scale
    out: Path
    seed: int
    human: str = DEFAULT_HUMAN  # the simulated human of the source demos and interventions
    precision: str = "fp32"  # training precision (policy.precision); fp32 leaves the steps' arguments as before
    precision_note: str = ""  # why precision is not the scale's (the scale's bf16 cannot run on this CPU)
    steps: dict[str, Step] = field(default_factory=dict)
    # (variant, column label) -> evaluation step key; variant -> training step key
    eval_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    train_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # steps whose stored result run_plan reused
    _lineages: dict[str, str] = field(default_factory=dict, repr=False)

    def add(self, step: Step) -> str:
        existing = self.steps.get(step.key)
        if existing is not None and existing.kwargs != step.kwargs:
            raise RuntimeError(f"step {step.key} planned twice with different arguments")
        self.steps[step.key] = step
        self._lineages.clear()
        return step.key

    def lineage(self, key: str) -> str:
        """Digest of step ``key``'s function (its name and source code), arguments (paths relative to
        ``out``, so a run in another directory compares equal), task definition and its inputs' lineages.
        Library code below the step function is not covered: a change there that alters results needs
        a fresh ``--out`` (or ``--overwrite``)."""
        if key not in self._lineages:
            step = self.steps[key]
            inside = json.dumps(str(self.out) + "/")[1:-1]
            kwargs = json.loads(json.dumps(step.kwargs).replace(inside, "<out>/"))
            parts: dict[str, Any] = {"fn": step.fn, "code": step_code_digest(step.fn), "kwargs": kwargs,
                                     "inputs": [self.lineage(d) for d in step.deps]}
            if "task" in step.kwargs:
                parts["task"] = task_digest(step.kwargs["task"])
            self._lineages[key] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
        return self._lineages[key]

    def in_order(self) -> list[str]:
        """Step keys, every step after the steps it reads (RuntimeError on an unknown input or a cycle)."""
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(key: str) -> None:
            if state.get(key) == 2:
                return
            if state.get(key) == 1:
                raise RuntimeError(f"steps depend on each other in a cycle through {key}")
            state[key] = 1
            for dep in self.steps[key].deps:
                if dep not in self.steps:
                    raise RuntimeError(f"step {key} depends on unknown step {dep}")
                visit(dep)
            state[key] = 2
            order.append(key)

        for key in self.steps:
            visit(key)
        return order


@functools.cache
def step_code_digest(fn: str) -> str:
    """Digest of the source of step function ``fn`` in ``experiment_jobs`` (RuntimeError if there is none)."""
    from imgen_ros.policy import experiment_jobs

    function = getattr(experiment_jobs, fn, None)
    if not callable(function):
        raise RuntimeError(f"no step function '{fn}' in imgen_ros.policy.experiment_jobs")
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def group_name(column: Column) -> str:
    """Datasets are shared by columns with the same task, observability and data corruption."""
    name = column.task
    if column.observability != "full":
        name += f"-{column.observability}"
    if column.data_noise != "on":
        name += f"-data_{column.data_noise}"
    return name


def parse_artifact(name: str) -> tuple[str, str, dict[str, str]]:
    """``imgen_np@200:action_noise=0.005`` -> (``imgen_np``, ``200``, {``action_noise``: ``0.005``})."""
    head, *options = name.split(":")
    base, _, arg = head.partition("@")
    parsed = dict(option.partition("=")[::2] for option in options)
    unknown = sorted(set(parsed) - set(ARTIFACT_OPTIONS))
    if unknown or any(not v for v in parsed.values()):
        raise ValueError(f"artifact {name!r}: options must be {'|'.join(ARTIFACT_OPTIONS)}=VALUE, got {options}")
    return base, arg, parsed


def resolve_precision(scale_name: str, precision: str | None) -> tuple[str, str]:
    """The training precision of a run and why it is not the one asked for ("" when it is).

    ``precision`` when given (an error where this CPU cannot run it), else the scale's own, which
    falls back to fp32 where this CPU cannot run bf16 (policy.precision.runnable_precision).
    """
    if scale_name not in SCALES:
        raise ValueError(f"unknown scale {scale_name!r}; choose from {', '.join(SCALES)}")
    if precision is not None:
        return runnable_precision(precision, explicit=True)
    return runnable_precision(SCALES[scale_name].precision, explicit=False)


def build_plan(name: str, scale_name: str, out: str | Path, seed: int = 0, human: str = DEFAULT_HUMAN,
               precision: str | None = None) -> Plan:
    """Every step of experiment ``name`` at ``scale_name`` (no work done); ``precision`` None: the scale's."""
    precision, precision_note = resolve_precision(scale_name, precision)
    if human not in HUMAN_MODELS:
        raise ValueError(f"unknown human model {human!r}; choose from {', '.join(HUMAN_MODELS)}")
    scale = SCALES[scale_name]
    specs = experiments(scale)
    if name not in specs:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(specs)}")
    exp = specs[name]
    plan = Plan(experiment=exp, scale=scale, out=Path(out).resolve(), seed=seed, human=human, precision=precision,
                precision_note=precision_note)
    recipe_of = recipes(scale)
    for column in exp.columns:
        group = group_name(column)
        artifacts = _Artifacts(plan, column, group)
        for variant in exp.variants:
            recipe = recipe_of[variant]
            trained_as = recipe.same_as or variant  # identical recipes share one training and evaluation
            train_key = artifacts.policy(trained_as, recipe)
            plan.train_keys[(variant, group)] = train_key
            checkpoint = plan.steps[train_key].kwargs["out_dir"] + "/models/best.pth"
            eval_key = plan.add(Step(
                key=f"{group}/eval/{slug(column.label)}/{slug(trained_as)}", fn="evaluate_policy",
                kwargs={"task": column.task, "checkpoint": checkpoint, "trials": scale.final_trials,
                        "noise": column.noise, "observability": column.observability, "seed_base": EVAL_SEED_BASE},
                deps=(train_key,), label=f"evaluate {trained_as} ({column.label})"))
            plan.eval_keys[(variant, column.label)] = eval_key
    return plan


class _Artifacts:
    """Plans the data and training steps of one dataset group on demand (shared across variants)."""

    def __init__(self, plan: Plan, column: Column, group: str) -> None:
        self.plan, self.column, self.group = plan, column, group
        self.root = plan.out / group
        self.s = plan.seed

    def _seed(self, k: int) -> int:
        return 1000 * self.s + k

    def _path(self, name: str) -> str:
        return str(self.root / "data" / f"{slug(name)}.hdf5")

    def dataset(self, name: str) -> tuple[str, str]:
        """(step key, hdf5 path) of artifact ``name`` (e.g. ``base_data``, ``imgen@200``)."""
        c, scale, p = self.column, self.plan.scale, self.plan
        base, arg, options = parse_artifact(name)
        key = f"{self.group}/data/{slug(name)}"
        path = self._path(name)
        common = {"task": c.task, "observability": c.observability}
        human = {"human": p.human}
        if base == "src_demos":
            step = Step(key, "collect_demos", {**common, **human, "out": path, "episodes": SOURCE_DEMOS,
                                               "seed": self._seed(1), "noise": "off"},
                        label="collect 10 source demos (true poses)")
        elif base == "test_demos":
            step = Step(key, "collect_demos", {**common, **human, "out": path, "episodes": SOURCE_DEMOS,
                                               "seed": self._seed(2), "noise": c.data_noise},
                        label="collect 10 demos in the test environment (Source Demo)")
        elif base == "base_data":
            src_key, src = self.dataset("src_demos")
            step = Step(key, "generate", {**common, "kind": "mimicgen", "source": src, "out": path,
                                          "n": scale.base_generated, "seed": self._seed(4), "noise": "off"},
                        deps=(src_key,), label=f"MimicGen {scale.base_generated} base demos")
        elif base == "mg_demo_data":
            src_key, src = self.dataset("test_demos")
            step = Step(key, "generate", {**common, "kind": "mimicgen", "source": src, "out": path,
                                          "n": scale.mg_demo_generated, "seed": self._seed(5),
                                          "noise": c.data_noise},
                        deps=(src_key,), label=f"MimicGen {scale.mg_demo_generated} demos in the test env (MG Demo)")
        elif base == "interventions":
            policy_key, checkpoint = self.base_policy()
            step = Step(key, "collect_interventions", {**common, **human, "out": path, "episodes": int(arg),
                                                       "seed": self._seed(3), "policy": checkpoint,
                                                       "noise": c.data_noise},
                        deps=(policy_key,), label=f"collect {arg} interventions on the base policy")
        elif base == "recovery":
            src_key, src = self.dataset(f"interventions@{arg}")
            step = Step(key, "recovery_segments", {"source": src, "out": path}, deps=(src_key,),
                        label=f"{arg} interventions from the take-over on")
        elif base in ("imgen", "imgen_nearest", "imgen_np"):
            src_key, src = self.dataset(f"interventions@{SOURCE_INTERVENTIONS}")
            policy_key, checkpoint = self.base_policy()
            with_policy = base != "imgen_np"
            # each I-MG row states its selection: the paper's random source, or the nearest one (imgen's)
            selection = {"imgen": "random", "imgen_nearest": "nearest", "imgen_np": None}[base]
            kwargs = {**common, "kind": "imgen", "source": src, "out": path, "n": int(arg),
                      "seed": self._seed(7 if base == "imgen_np" else 6), "noise": c.data_noise,
                      "policy": checkpoint if with_policy else None, "policy_execution": with_policy,
                      # a step argument, so that a run of older data (stopped at once) is not reused
                      "reveal_grace_steps": DEFAULT_REVEAL_GRACE_STEPS}
            if selection is not None:
                kwargs["selection"] = selection
            if scale.short_generation_ok and with_policy:
                kwargs["allow_short"] = True
            label = {"imgen": " (random source)", "imgen_nearest": " (nearest source)",
                     "imgen_np": " without policy execution"}[base]
            step = Step(key, "generate", kwargs, deps=(src_key, policy_key) if with_policy else (src_key,),
                        label=f"I-MG {arg} interventions{label}")
        else:
            raise ValueError(f"unknown artifact {name!r}")
        if options:
            step = self._with_options(step, name, options)
        if step.fn == "generate" and scale.drop_holds:  # absent otherwise: older runs' steps stay reusable
            step = Step(step.key, step.fn, {**step.kwargs, "drop_holds": True}, step.deps, label=step.label)
        return p.add(step), path

    @staticmethod
    def _with_options(step: Step, name: str, options: dict[str, str]) -> Step:
        """``step`` generating with the artifact's ``action_noise`` (only generated artifacts take it)."""
        if step.fn != "generate":
            raise ValueError(f"artifact {name!r}: only generated datasets take options")
        noise = float(options["action_noise"])
        return Step(step.key, step.fn, {**step.kwargs, "action_noise": noise}, step.deps,
                    label=f"{step.label}, action noise {noise:g}")

    def _train(self, variant: str, datasets: tuple[str, ...], weights: tuple[float, ...] | None,
               train_seed: int = 1) -> str:
        keys, paths = zip(*(self.dataset(d) for d in datasets), strict=True)
        out_dir = str(self.root / "train" / slug(variant))
        size = asdict(self.plan.scale.train)
        if self.plan.precision != "fp32":
            size["precision"] = self.plan.precision
        return self.plan.add(Step(
            key=f"{self.group}/train/{slug(variant)}", fn="train_policy",
            kwargs={"task": self.column.task, "datasets": list(paths), "weights": list(weights) if weights else None,
                    "out_dir": out_dir, "size": size, "seed": self.s + train_seed,
                    "eval_noise": self.column.select_noise or self.column.noise,
                    "eval_observability": self.column.observability},
            deps=tuple(keys), label=f"train {variant}"))

    def base_policy(self) -> tuple[str, str]:
        key = self._train("Base", ("base_data",), None)
        return key, self.plan.steps[key].kwargs["out_dir"] + "/models/best.pth"

    def policy(self, variant: str, recipe: Recipe) -> str:
        if recipe.use_base_policy:
            return self.base_policy()[0]
        return self._train(variant, recipe.datasets, recipe.weights, recipe.train_seed)


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------

def _marker(out: Path, key: str) -> Path:
    return out / "steps" / f"{key.replace('/', '__')}.json"


def _log(out: Path, key: str) -> Path:
    return out / "logs" / f"{key.replace('/', '__')}.log"


def load_marker(plan: Plan, key: str, current: dict[str, str]) -> dict[str, Any] | None:
    """The stored record of step ``key`` in ``plan.out`` if it is current, else None: it finished with
    the same lineage, on the very runs of its inputs that are current now (``current``: step key ->
    the ``run`` id of its current record), and its outputs are there (a training folder with the
    checkpoint its record names). A run directory that was moved as a whole keeps its records."""
    record = _read_record(_marker(plan.out, key), plan.out)
    if record is None or not _records(record, plan, key, current):
        return None
    return record if _outputs_present(plan, key, record) else None


def _check_record_paths(plan: Plan) -> None:
    """ValueError naming a path of the run's bookkeeping that holds something it cannot be (a file at
    ``steps/``, a folder at a step record or at its temporary file): the run could neither read nor
    replace it."""
    steps = plan.out / "steps"
    if (steps.exists() or steps.is_symlink()) and not steps.is_dir():
        raise ValueError(f"{steps}: must be the folder of step records; move it away to run here")
    for key in plan.steps:
        marker = _marker(plan.out, key)
        for path in (marker, _temporary(marker)):
            if (path.exists() or path.is_symlink()) and not path.is_file():
                raise ValueError(f"{path}: a step record must be a file; move it away to rerun step {key}")


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _read_record(path: Path, out: Path, written_in: Path | None = None) -> dict[str, Any] | None:
    """A marker's record, None if absent or unreadable. Paths in it are moved from the directory the
    record was written in (its ``out``; ``written_in`` for records that do not say) to ``out``."""
    try:
        text = path.read_text()
        record = json.loads(text)
        if not isinstance(record, dict):
            return None
        origin = record.get("out") if isinstance(record.get("out"), str) else written_in
        if origin is not None and str(origin) != str(out):
            old, new = (json.dumps(str(d) + "/")[1:-1] for d in (origin, out))
            record = json.loads(text.replace(old, new))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _records(record: dict[str, Any], plan: Plan, key: str, current: dict[str, str]) -> bool:
    """Whether a marker's record is of step ``key`` with the same arguments and lineage, made from the
    current runs of its inputs (a record written before lineages were recorded is not: the step reruns)."""
    step = plan.steps[key]
    inputs = {d: current.get(d) for d in step.deps}
    return (record.get("fn") == step.fn and record.get("lineage") == plan.lineage(key)
            and record.get("kwargs") == json.loads(json.dumps(step.kwargs)) and record.get("inputs") == inputs
            and None not in inputs.values() and isinstance(record.get("run"), str)
            and isinstance(record.get("result"), dict))


def _write_marker(plan: Plan, key: str, result: dict[str, Any], current: dict[str, str],
                  run: str | None = None) -> str:
    """Record step ``key`` finished (a new ``run`` id unless given) on the current runs of its inputs;
    returns the run id. RuntimeError naming the path if it cannot be written."""
    step = plan.steps[key]
    run = run or uuid.uuid4().hex
    record = {"fn": step.fn, "kwargs": step.kwargs, "lineage": plan.lineage(key), "run": run,
              "inputs": {d: current[d] for d in step.deps}, "out": str(plan.out), "result": result}
    marker = _marker(plan.out, key)
    tmp = _temporary(marker)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as f:
            f.write(json.dumps(record, indent=1))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(marker)  # a crash while writing leaves the old marker or none, never half of one
    except OSError as exc:
        raise RuntimeError(f"cannot record step {key} finished at {marker}: {exc.strerror or exc}") from exc
    return run


# the kwargs naming a step's own outputs (everything else a step reads is another step's output)
_OUTPUT_KWARGS = ("out", "out_dir")


def _outputs(step: Step) -> list[Path]:
    return [Path(step.kwargs[k]) for k in _OUTPUT_KWARGS if k in step.kwargs]


def _result_paths(record: dict[str, Any], out: Path) -> list[Path]:
    """The paths inside ``out`` that a record's result names (a training's best checkpoint, a dataset)."""
    inside = str(out) + "/"
    found: list[Path] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and value.startswith(inside):
            found.append(Path(value))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(record.get("result"))
    return found


def _outputs_present(plan: Plan, key: str, record: dict[str, Any]) -> bool:
    return all(p.exists() for p in _outputs(plan.steps[key]) + _result_paths(record, plan.out))


def _copy_output(source: Path, target: Path) -> None:
    """``source`` (a file or a folder) copied to ``target``, replacing what is there (a symbolic link
    itself, not what it points to). Copies, not hard links: a training rerun in the new directory writes
    its checkpoints in place and must not change the earlier run's. The copy is made beside ``target``
    and swapped into place (``data.outputs.swap_in``), so an interrupted copy leaves no half of one there."""
    tmp = target.with_name(target.name + ".copying")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists() or tmp.is_symlink():
            remove_path(tmp)  # left by an interrupted copy
        if source.is_dir():
            shutil.copytree(source, tmp, symlinks=True)
        else:
            shutil.copy2(source, tmp)
        swap_in(tmp, target)
    except (OSError, shutil.Error) as exc:
        raise RuntimeError(f"cannot copy {source} to {target}: {exc}") from exc


def adopt_steps(plan: Plan, earlier: str | Path) -> list[str]:
    """Take over the finished steps of an earlier run in ``earlier`` that ``plan`` would run with the same
    lineage (paths compared relative to each run's directory), e.g. the seeds experiment on top of
    table1's Nut Insertion data and base policy. A step is taken over only where the steps it reads are
    current here and are the very runs it was made from there. Their outputs are copied into
    ``plan.out`` and their markers rewritten to it; returns the adopted keys. Steps already current in
    ``plan.out`` stay."""
    source = Path(earlier).resolve()
    if not (source / "steps").is_dir():
        raise ValueError(f"--reuse {earlier}: no steps/ folder there (not an imgen experiment directory)")
    if source == plan.out:
        return []
    _check_record_paths(plan)
    adopted: list[str] = []
    current: dict[str, str] = {}
    for key in plan.in_order():
        step = plan.steps[key]
        here = load_marker(plan, key, current)
        if here is not None:
            current[key] = here["run"]
            continue
        record = _read_record(_marker(source, key), plan.out, written_in=source)
        if record is None or not _records(record, plan, key, current):
            continue
        needed = _outputs(step) + _result_paths(record, plan.out)
        if not all(p.is_relative_to(plan.out) for p in _outputs(step)):
            continue  # its outputs lie elsewhere: rerun it
        if not all((source / p.relative_to(plan.out)).exists() for p in needed):
            continue  # its outputs are gone there: rerun it
        _marker(plan.out, key).unlink(missing_ok=True)  # an interrupted copy leaves no record to trust
        for dst in _outputs(step):
            _copy_output(source / dst.relative_to(plan.out), dst)
        log = _log(source, key)
        if log.is_file():
            _copy_output(log, _log(plan.out, key))
        current[key] = _write_marker(plan, key, record["result"], current, run=record["run"])
        adopted.append(key)
    return adopted


def run_plan(plan: Plan, progress: Callable[[str], None] = print, workers: int | None = None) -> dict[str, Any]:
    """Run every unfinished step (dependencies first, ``workers`` at a time); returns key -> result.
    When a step fails, nothing more starts, the steps already running finish and are recorded (so a
    rerun keeps them), and then RuntimeError names the first failure."""
    from imgen_ros.policy.experiment_jobs import run_step

    out = plan.out
    results: dict[str, Any] = {}
    pending: dict[str, Step] = {}
    _check_record_paths(plan)
    current: dict[str, str] = {}  # step key -> run id of its current record
    for key in plan.in_order():  # a step is reused only where the runs of the steps it read are current
        record = load_marker(plan, key, current)
        if record is not None:
            results[key] = record["result"]
            current[key] = record["run"]
            plan.reused.append(key)
        else:
            pending[key] = plan.steps[key]
    reused = len(results)
    total = len(plan.steps)
    progress(f"{plan.experiment.name} [{plan.scale.name}]: {total} steps, {reused} reused from {out}/steps")
    workers = workers or plan.scale.workers
    priority = critical_path(plan)
    pending = dict(sorted(pending.items(), key=lambda kv: -priority[kv[0]]))
    running: dict[Future, Step] = {}
    started: dict[str, float] = {}
    failure: RuntimeError | None = None
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        while (pending and failure is None) or running:
            for key, step in list(pending.items()):
                if len(running) >= workers or failure is not None:
                    break
                if all(d in results for d in step.deps):
                    del pending[key]
                    try:
                        _marker(out, key).unlink(missing_ok=True)  # a rerun that crashes leaves no stale record
                    except OSError as exc:
                        raise RuntimeError(f"cannot replace the record of step {key}: {exc}") from exc
                    started[key] = time.monotonic()
                    running[pool.submit(run_step, step.fn, step.kwargs, str(_log(out, key)))] = step
                    progress(f"[{_clock(t0)}] start  {step.label or key}")
            if not running:
                raise RuntimeError(f"steps cannot start (missing inputs): {sorted(pending)}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    if failure is None:
                        failure = RuntimeError(f"step {step.key} failed: {type(exc).__name__}: {exc} "
                                               f"(log: {_log(out, step.key)})")
                        failure.__cause__ = exc
                        if running:
                            progress(f"[{_clock(t0)}] step {step.key} failed; waiting for the {len(running)} "
                                     "running to finish and be recorded")
                    continue
                results[step.key] = result
                current[step.key] = _write_marker(plan, step.key, result, current)
                took = time.monotonic() - started[step.key]
                progress(f"[{_clock(t0)}] done   {step.label or step.key} ({took:.0f} s){_brief(step, result)}")
    if failure is not None:
        raise failure
    return results


# Rough relative step costs, only to start the longest chains first.
_COST = {"train_policy": 10.0, "generate": 3.0, "evaluate_policy": 2.0, "collect_interventions": 1.0,
         "collect_demos": 0.5, "recovery_segments": 0.1}


def critical_path(plan: Plan) -> dict[str, float]:
    """Each step's cost plus the costliest chain of steps that wait for it."""
    children: dict[str, list[str]] = {k: [] for k in plan.steps}
    for key, step in plan.steps.items():
        for dep in step.deps:
            children[dep].append(key)
    memo: dict[str, float] = {}

    def chain(key: str) -> float:
        if key not in memo:
            memo[key] = _COST.get(plan.steps[key].fn, 1.0) + max((chain(c) for c in children[key]), default=0.0)
        return memo[key]

    return {k: chain(k) for k in plan.steps}


def _clock(t0: float) -> str:
    s = int(time.monotonic() - t0)
    return f"{s // 60:02d}:{s % 60:02d}"


def _brief(step: Step, result: dict[str, Any]) -> str:
    if step.fn == "evaluate_policy":
        return f": {result['successes']}/{result['trials']} = {result['success_rate']:.0%}"
    if step.fn == "train_policy":
        sel = result.get("selection_success_rate")
        return f": best epoch {result['best_epoch']}" + (f" (selection {sel:.0%})" if sel is not None else "")
    if "demos" in result:
        extra = f", {result['attempts']} attempts" if "attempts" in result else ""
        return f": {result['demos']} episodes, {result['samples']} samples{extra}"
    return ""


def run_experiment(name: str, scale: str, out: str | Path, seed: int = 0, workers: int | None = None,
                   progress: Callable[[str], None] = print, human: str = DEFAULT_HUMAN,
                   reuse: tuple[str | Path, ...] = (), precision: str | None = None) -> dict[str, Any]:
    """Plan, run (reusing finished steps, also those of the earlier runs in ``reuse`` with the same
    arguments), and write results.json / results.md / results.png into ``out``."""
    from imgen_ros.policy.experiment_report import write_report

    t0 = time.monotonic()
    plan = build_plan(name, scale, out, seed, human=human, precision=precision)
    if plan.precision_note:
        progress(f"warning: scale {plan.scale.name}: {plan.precision_note}")
    if plan.precision == "bf16" and not cpu_has_native_bf16():
        progress("warning: training in bf16 on a CPU without AVX512-BF16/AMX: oneDNN emulates bfloat16, which is "
                 "slower than fp32 here (pass --precision fp32 for the same run in float32)")
    plan.out.mkdir(parents=True, exist_ok=True)
    for earlier in reuse:
        adopted = adopt_steps(plan, earlier)
        progress(f"{len(adopted)} finished steps taken over from {Path(earlier).resolve()}")
    results = run_plan(plan, progress=progress, workers=workers)
    return write_report(plan, results, wall_s=time.monotonic() - t0)


__all__ = ["EVAL_SEED_BASE", "EXPERIMENT_NAMES", "SELECTION_SEED_BASE", "Plan", "Step", "adopt_steps", "build_plan",
           "resolve_precision", "run_experiment", "run_plan"]
