"""``imgen rehearse``: the deployment rehearsal, the zero-shot sim-to-real proxy (imgen_ros.rehearsal).

    imgen rehearse --checkpoint I-MG=runs/.../i_mg/models/best.pth --episodes 50 --out rehearsal/
    imgen rehearse --checkpoint CKPT --episodes 20 --perturb extrinsics --perturb push --out DIR

Runs the real robot's graph (estimator, policy, arbiter with the real safety file, contact detector,
teleop, recorder) against sim_node as FR3 + D415, in a private network namespace (re-executes itself
in one with ``unshare --net``; refuses to start a node anywhere else), for every checkpoint x
``--perturb`` row; then ``imgen eval`` on the same seeds for comparison. Writes DIR/results.json
(after every episode), DIR/results.md, DIR/bags/<row>/ (one rosbag2 per episode), DIR/logs/<row>/.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from imgen_ros.cli._args import EPISODES, SEED, bounded_float, path_arg
from imgen_ros.cli.main import CliError
from imgen_ros.data.outputs import nearest_existing
from imgen_ros.rehearsal import TIME_SCALE_RANGE

if TYPE_CHECKING:
    from imgen_ros.rehearsal.plan import CheckpointSpec

DEPTH_RATE = bounded_float(15.0, 60.0, "below ~15 Hz the real arbiter's 75 ms pose time-out trips")
TIME_SCALE = bounded_float(*TIME_SCALE_RANGE, "below 0.5 the graph's 1 s time-outs leave their declared ranges")


def _utc() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.node() or 'host'}: {os.cpu_count()} CPUs, load average {load:.1f}"


def run(args: argparse.Namespace) -> int:
    from imgen_ros.policy.evaluate import EVAL_SEED_BASE
    from imgen_ros.rehearsal.plan import PERTURBATIONS, CheckpointSpec, RehearsalConfig, plan_rows

    try:
        specs = [CheckpointSpec.parse(c) for c in args.checkpoint]
        rows = plan_rows(specs, args.perturb or ["none"])
        config = RehearsalConfig(episodes=args.episodes,
                                 seed_base=EVAL_SEED_BASE if args.seed_base is None else args.seed_base,
                                 pose_error=args.pose_error, depth_rate_hz=args.depth_rate,
                                 resume_latched=not args.no_resume, time_scale=args.time_scale)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    unknown = [p for p in args.perturb or [] if p not in PERTURBATIONS]
    if unknown:
        raise CliError(f"unknown --perturb {unknown[0]!r}; choose from {', '.join(PERTURBATIONS)}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():  # --overwrite replaces a rehearsal's folder, never a file
        raise CliError(f"{out} exists and is not a directory; the rehearsal writes a folder (move the file away)")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise CliError(f"{out} exists and is not an empty directory; pass --overwrite to replace it")
    if not out.exists():  # refuse an --out under a file here, not after starting the graph
        ancestor = nearest_existing(out)
        if not ancestor.is_dir():
            raise CliError(f"cannot write {out}: {ancestor} is not a directory")
    _check_checkpoints(specs, config.task)
    _isolate()
    return _rehearse(args, config, rows, out)


def _check_checkpoints(specs: list[CheckpointSpec], task: str) -> None:
    """Refuse a file that is no checkpoint, or one of another task or observation layout, before any node starts."""
    from imgen_ros.policy.checkpoint import CheckpointError, load_checked, task_obs_shapes
    from imgen_ros.rehearsal.plan import EXPERT_SPECS

    shapes = task_obs_shapes(task, "full")  # the rehearsal's policy_node observes fully (rehearsal.plan)
    for spec in specs:
        if spec.policy in EXPERT_SPECS:
            continue
        try:
            load_checked(spec.policy, task, shapes, task_label="the rehearsal task", observability="full")
        except CheckpointError as exc:
            raise CliError(str(exc)) from exc


OWN_NETNS_ENV = "IMGEN_REHEARSAL_NETNS"


def _isolate() -> None:
    """Re-execute in a network namespace of its own (or refuse) before any ROS 2 code runs. Even inside
    a private namespace (scripts/netns-run) the graph gets a fresh one: another graph already running
    there on the same DDS domain (a test suite's, a user's) must not answer its services or events."""
    from imgen_ros.rehearsal.processes import IsolationError, in_private_netns, reexec_in_private_netns

    if os.environ.get(OWN_NETNS_ENV) == "1":
        return
    if sys.argv[1:2] != ["rehearse"]:   # called as a function: argv is not this command, do not guess
        if in_private_netns():
            return
        raise CliError("imgen rehearse must run in a private network namespace (scripts/netns-run)")
    os.environ[OWN_NETNS_ENV] = "1"
    try:
        reexec_in_private_netns([sys.executable, "-m", "imgen_ros.cli.main", *sys.argv[1:]])
    except IsolationError as exc:
        os.environ.pop(OWN_NETNS_ENV, None)
        if in_private_netns():   # cannot nest one: the enclosing private namespace still keeps DDS local
            return
        raise CliError(str(exc)) from exc


def _rehearse(args: argparse.Namespace, config, rows, out: Path) -> int:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from imgen_ros.core.arbiter import ArbiterConfig
    from imgen_ros.core.params import ConfigError, load_config
    from imgen_ros.data.outputs import OutputError, output_dir
    from imgen_ros.rehearsal.plan import CORRUPTION_NOTE, PERTURBATIONS, config_dir
    from imgen_ros.rehearsal.processes import require_private_netns

    require_private_netns()

    def terminate(*_: object) -> None:   # SIGTERM: stop the graph and keep the results, as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    cfg_dir = config_dir()
    try:
        arbiter = load_config(ArbiterConfig, cfg_dir / "arbiter.yaml", "intervention_arbiter",
                              extra=("watchdog_rate_hz", "state_rate_hz"))
    except (ConfigError, ValueError, OSError) as exc:
        raise CliError(f"the real arbiter configuration does not load: {exc}") from exc
    from imgen_ros.sim import task_class

    horizon = task_class(config.task).horizon
    config = type(config)(**{**config.__dict__, "horizon": horizon})
    err = config.extrinsics_error
    dds = ("Fast DDS with a 16 MB shared-memory segment (DIR/fastdds_profile.xml): a 614 KB depth frame "
           "does not fit the default 512 KB and goes over fragmented UDP, where most are lost"
           if args.dds == "shm" else "Fast DDS's stock transports (512 KB shared-memory segment)")
    meta = {
        "command": "imgen " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["rehearse"] else "imgen rehearse",
        "started": _utc(), "machine": _machine(),
        "config": {
            "task": config.task, "episodes": config.episodes, "seed_base": config.seed_base, "horizon": horizon,
            "pose_error": config.pose_error, "corruption_seed_param": config.corruption_seed_param,
            "corruption_note": CORRUPTION_NOTE, "depth_rate_hz": config.depth_rate_hz,
            "fresh_state_s": config.fresh_state_s, "resume_latched": config.resume_latched, "dds": dds,
            "time_scale": config.time_scale,
            "config_dir": str(cfg_dir), "arbiter_file": str(cfg_dir / "arbiter.yaml"),
            "safety": {k: list(v) if isinstance(v, tuple) else v for k, v in arbiter.safety.__dict__.items()},
            "extrinsics_file": str(cfg_dir / "camera_extrinsics_sim.yaml"),
            "perturbations": {
                **PERTURBATIONS,
                "extrinsics": f"the estimator's calibration off by {err.translation_m * 1e3:g} mm along the optical "
                              f"axis and {err.rotation_deg:g} deg about the optical x axis (a tilt) from the true "
                              "camera pose (DIR/extrinsics_perturbed.yaml); the contact reveal passes the same pose on",
                "depth_noise": f"the simulated D415's axial depth noise sigma x{config.depth_noise_scale:g} "
                               "(sim_node depth_noise_scale)",
                "push": f"the cube pushed {config.push_distance_m * 100:g} cm sideways (direction from the scene "
                        f"seed) at control step {config.push_step} ({config.push_step / 20:g} s), the hand still "
                        "above it (sim_node push_step); measured on the ground truth",
            },
        },
    }
    checkpoints = [Path(r.checkpoint.policy) for r in rows if not r.checkpoint.policy.startswith("expert")]
    try:
        with output_dir(out, overwrite=args.overwrite, inputs=checkpoints,
                        worth_keeping=lambda d: (d / "results.json").exists()) as target:
            results = _run_rows(args, config, rows, target, meta, cfg_dir)
            _in_process(args, config, rows, results)
            meta["finished"] = _utc()
            _write(target, meta, results)
    except OutputError as exc:
        raise CliError(str(exc)) from exc
    print(f"results: {out / 'results.md'}", flush=True)
    return 0


def _write(target: Path, meta: dict, results) -> None:
    from imgen_ros.rehearsal.report import render
    from imgen_ros.rehearsal.results import results_document, write_json_atomic

    write_json_atomic(target / "results.json", results_document(meta, results))
    tmp = target / f".results.md.{os.getpid()}.tmp"
    tmp.write_text(render(meta, [r.summary() for r in results]))
    os.replace(tmp, target / "results.md")


def _run_rows(args: argparse.Namespace, config, rows, target: Path, meta: dict, cfg_dir: Path):
    import rclpy

    from imgen_ros.rehearsal.driver import GraphError, RehearsalDriver
    from imgen_ros.rehearsal.perturbations import write_perturbed_extrinsics
    from imgen_ros.rehearsal.plan import NODES, RowPaths, eval_scenes, node_commands
    from imgen_ros.rehearsal.processes import DDS_PROFILE_ENV, Graph, graph_environment, write_dds_profile
    from imgen_ros.rehearsal.results import RowResult

    seeds = [config.scene_seed(i) for i in range(config.episodes)]
    print(f"rehearsal: {len(rows)} row(s) x {config.episodes} episode(s), scene seeds {seeds[0]}..{seeds[-1]}; "
          f"imgen eval's scenes ...", flush=True)
    scenes = eval_scenes(config.task, seeds)
    true_extrinsics = cfg_dir / "camera_extrinsics_sim.yaml"
    perturbed = None
    if any(r.perturbation == "extrinsics" for r in rows):
        perturbed = write_perturbed_extrinsics(true_extrinsics, target / "extrinsics_perturbed.yaml",
                                               config.extrinsics_error)
    profile = write_dds_profile(target / "fastdds_profile.xml") if args.dds == "shm" else None
    for name in (DDS_PROFILE_ENV, "FASTRTPS_DEFAULT_PROFILES_FILE"):   # this process's participants alike
        os.environ.pop(name, None)
    if profile is not None:
        os.environ[DDS_PROFILE_ENV] = str(profile)
    base_domain = int(os.environ.get("ROS_DOMAIN_ID", "0") or 0)
    results: list[RowResult] = []
    for k, row in enumerate(rows):
        paths = RowPaths(cfg_dir, perturbed if row.perturbation == "extrinsics" else true_extrinsics,
                         target / "bags" / row.name, target / "logs" / row.name)
        result = RowResult(row.checkpoint.label, row.checkpoint.policy, row.perturbation)
        results.append(result)
        domain = (base_domain + k) % 101   # a fresh DDS domain per row: nothing of the last graph lingers
        env = graph_environment(dds_profile=profile)
        env["ROS_DOMAIN_ID"] = str(domain)
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=domain)
        t_row = time.monotonic()
        graph = Graph(node_commands(row, config, paths, sys.executable), paths.log_dir, env)
        driver = RehearsalDriver(time_scale=config.time_scale, context=context)
        driver.spin_in_background()

        def check_alive(graph: Graph = graph) -> None:
            if graph.dead():
                raise GraphError(f"a node of the graph exited: {graph.describe_dead()}")

        try:
            print(f"[{k + 1}/{len(rows)}] {row.checkpoint.label} / {row.perturbation}: starting the graph "
                  f"(logs {paths.log_dir})", flush=True)
            driver.wait_ready(NODES, check_alive)
            result.startup_s = time.monotonic() - t_row
            for i, seed in enumerate(seeds):
                scene = scenes[seed]
                record, state_ages, pose_ages = driver.run_episode(
                    i, seed, timeout_s=config.episode_timeout_s, resume_latched=config.resume_latched,
                    measure_push=row.perturbation == "push", check_alive=check_alive,
                    eval_cube=scene.cube_position)
                record.eval_pose_error_m = [round(v, 6) for v in scene.pose_error]
                result.episodes.append(record)
                result.state_ages_s += state_ages
                result.pose_ages_s += pose_ages
                result.wall_s = time.monotonic() - t_row
                _check_record(record, config, result)
                _progress(k, len(rows), row, record, result, config)
                _write(target, meta, results)
            _wait_for_bags(paths.record_dir, len(result.episodes), result)
            result.cpu_s = graph.cpu_seconds()
        except GraphError as exc:
            result.notes.append(f"stopped: {exc}")
            _write(target, meta, results)
            raise CliError(f"{row.checkpoint.label} / {row.perturbation}: {exc} (partial results in {target})") from exc
        finally:
            driver.shutdown()
            graph.stop()
            context.try_shutdown()
            result.wall_s = time.monotonic() - t_row
    return results


def _wait_for_bags(record_dir: Path, episodes: int, result, idle_timeout: float = 30.0,
                   cap: float = 180.0) -> None:
    """Let the recorder close the last episode's bag before its process is stopped. Returns as soon as every
    bag is closed; waits while the recorder makes progress (a bag closed or bytes written within
    ``idle_timeout``), up to ``cap``: on a loaded 2-core machine its backlog reached 25 s."""
    from imgen_ros.data.bag import BagError, bag_custom_data

    complete: set[Path] = set()   # bags seen closed complete: not read again

    def progress() -> tuple[int, int]:
        """Bags closed complete, and the bytes in the others (what the recorder is still writing)."""
        size = 0
        for bag in record_dir.iterdir() if record_dir.is_dir() else []:
            if bag in complete:
                continue
            try:
                if bag_custom_data(bag).get("imgen_complete") == "true":
                    complete.add(bag)
                    continue
            except BagError:
                pass
            for f in bag.rglob("*"):
                try:
                    size += f.stat().st_size if f.is_file() else 0
                except OSError:   # a chunk renamed or removed meanwhile
                    pass
        return len(complete), size

    start = last_change = time.monotonic()
    seen = progress()
    while seen[0] < episodes:
        now = time.monotonic()
        if now - last_change > idle_timeout or now - start > cap:
            break
        time.sleep(0.2)
        current = progress()
        if current != seen:
            seen, last_change = current, time.monotonic()
    if seen[0] < episodes:
        result.notes.append(f"{seen[0]} of {episodes} bags closed complete in {record_dir} (the recorder wrote "
                            f"nothing for {time.monotonic() - last_change:.0f} s, or {cap:.0f} s passed)")


def _check_record(record, config, result) -> None:
    """Note what does not match the plan (the corruption seed, the scene) instead of hiding it."""
    from imgen_ros.rehearsal.driver import ICP_READY_TIMEOUT_S

    if config.pose_error == "task" and record.pose_error_seed is not None and \
            record.pose_error_seed != record.seed:
        result.notes.append(f"episode {record.index}: pose-error seed {record.pose_error_seed}, expected {record.seed}")
    if record.scene_error_mm is not None and record.scene_error_mm > 2.0:
        result.notes.append(f"episode {record.index}: the cube rests {record.scene_error_mm:.1f} mm from imgen eval's "
                            "scene for this seed")
    if not record.icp_ready:
        result.notes.append(f"episode {record.index}: the estimator had not settled on the scene within "
                            f"{config.wall_s(ICP_READY_TIMEOUT_S):g} s; started "
                            "anyway")


def _progress(k: int, n_rows: int, row, record, result, config) -> None:
    done = len(result.episodes)
    wins = sum(e.success for e in result.episodes)
    extra = ""
    if record.push_m is not None:
        extra += f", push {record.push_m * 100:.1f} cm"
    if record.resumes:
        extra += f", {record.resumes} resume(s)"
    print(f"[{k + 1}/{n_rows}] {row.checkpoint.label} / {row.perturbation}: episode {done}/{config.episodes} "
          f"seed {record.seed}: {record.outcome} ({record.reason}) in {record.steps} steps, {record.wall_s:.1f} s; "
          f"clipped {record.clipped}, fault holds {len(record.fault_holds)}{extra}; ICP error "
          f"{'-' if record.icp_error_mm is None else f'{record.icp_error_mm:.1f} mm'}; "
          f"{wins}/{done} succeeded", flush=True)


def _in_process(args: argparse.Namespace, config, rows, results) -> None:
    """imgen eval on the same seeds, for every checkpoint that has a ``none`` row."""
    if args.no_in_process:
        return
    import torch

    from imgen_ros.policy.evaluate import evaluate

    torch.set_num_threads(1)
    for row, result in zip(rows, results, strict=True):
        if row.perturbation != "none":
            continue
        print(f"imgen eval {row.checkpoint.label}: {config.episodes} trials in-process on the same seeds ...",
              flush=True)
        t0 = time.monotonic()
        res = evaluate(config.task, row.checkpoint.policy, trials=config.episodes,
                       noise="on" if config.pose_error == "task" else "off", observability="full",
                       seed_base=config.seed_base)
        result.in_process = {"trials": res.trials, "successes": res.successes, "success_rate": res.success_rate,
                             "ci_low": res.ci_low, "ci_high": res.ci_high, "mean_steps": res.mean_steps,
                             "wall_s": time.monotonic() - t0,
                             "per_trial_success": [bool(t.success) for t in res.per_trial]}
        print(f"imgen eval {row.checkpoint.label}: {res.summary()}", flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    from imgen_ros.rehearsal import PERTURBATIONS

    parser = subparsers.add_parser(
        "rehearse", help="deployment rehearsal: the real robot's ROS 2 graph against the simulator, per checkpoint",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", required=True,
                        help="robomimic checkpoint (.pth), 'expert', or LABEL=PATH; repeat for several")
    parser.add_argument("--episodes", type=EPISODES, default=50, help=EPISODES.doc("episodes per row (default 50)"))
    parser.add_argument("--out", required=True, type=path_arg,
                        help="output directory (results.json, results.md, bags/, logs/)")
    parser.add_argument("--perturb", action="append", choices=tuple(PERTURBATIONS), default=None,
                        help="rows per checkpoint (repeat; default: none). " + "; ".join(
                            f"{k}: {v}" for k, v in PERTURBATIONS.items()))
    parser.add_argument("--pose-error", choices=("task", "off"), default="task",
                        help="policy_node observation.noise.mode (the real launch's pose_error; default task)")
    parser.add_argument("--depth-rate", type=DEPTH_RATE, default=30.0,
                        help=DEPTH_RATE.doc("simulated D415 depth rate [Hz] (default 30)"))
    parser.add_argument("--seed-base", type=SEED, default=None,
                        help=SEED.doc("episode i uses scene seed base+i (default 1000000, imgen eval's)"))
    parser.add_argument("--time-scale", type=TIME_SCALE, default=1.0,
                        help=TIME_SCALE.doc("run the graph at this fraction of real time (default 1): every rate of "
                                            "every node times it, every time-out and maximum age divided by it, so "
                                            "each control step sees what it sees at real time with more wall time "
                                            "to compute it (a faster machine's stand-in, not a real-time test)"))
    parser.add_argument("--dds", choices=("shm", "stock"), default="shm",
                        help="shm (default): Fast DDS with a shared-memory segment that holds a depth frame; stock: "
                             "Fast DDS's defaults, under which most 614 KB depth frames are lost on UDP")
    parser.add_argument("--no-resume", action="store_true",
                        help="leave a latched arbiter fault latched (the episode then fails) instead of handing "
                             "control back to the policy as an operator would")
    parser.add_argument("--no-in-process", action="store_true",
                        help="skip imgen eval on the same seeds (the comparison column)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (kept until success)")
    parser.set_defaults(func=run)
