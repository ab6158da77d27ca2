"""results.md of a rehearsal: one table row per (checkpoint, perturbation), then how it was run (ROS-free)."""

from __future__ import annotations

from typing import Any

from imgen_ros.rehearsal.plan import CORRUPTION_NOTE, PERTURBATIONS


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _rate(s: dict[str, Any]) -> str:
    if not s.get("trials"):
        return "-"
    return f"{_pct(s['success_rate'])} ({_pct(s['ci_low'])}–{_pct(s['ci_high'])}), {s['successes']}/{s['trials']}"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _ages(ages: dict[str, float | None]) -> str:
    return f"{_num(ages.get('p50'))} / {_num(ages.get('p99'))}"


def row_line(s: dict[str, Any]) -> str:
    ip = s.get("in_process")
    in_process = "-" if not ip else _rate({**ip, "trials": ip["trials"], "successes": ip["successes"]})
    inside = {True: "yes", False: "**no**"}.get(s.get("inside_in_process_ci"), "-")
    clipped = f"{s['clipped_commands']} / {s['clipped_episodes']} ep"
    if s["clipped_commands"]:
        clipped += f" ({s['clipped_fraction']:.1%}; {', '.join(s['clip_kinds'])})"
    faults = f"{s['fault_holds']} / {s['resumes']}"
    if s.get("timeouts"):
        faults += f", {s['timeouts']} timed out"
    icp = s.get("icp_error_mm") or {}
    perturbation = s["perturbation"]
    if s.get("push_m"):
        perturbation += f" ({s['push_m']['min'] * 100:.1f}–{s['push_m']['max'] * 100:.1f} cm measured)"
    cells = [s["label"], perturbation, _rate(s), in_process, inside, _num(s.get("mean_steps")), clipped,
             _ages(s["state_age_ms"]), _ages(s["pose_age_ms"]), faults,
             f"{_num(s.get('pose_rate_hz_p50'))} / {_num(s.get('pose_max_gap_ms'), '{:.0f}')}",
             f"{_num(icp.get('p50'))} / {_num(icp.get('max'))}", _num(s.get("s_per_episode"))]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| policy | perturbation | through the graph (95% CI) | imgen eval, same seeds | inside | mean steps | "
          "clipped cmds / episodes | state age p50 / p99 ms | pose age p50 / p99 ms | fault HOLDs / resumes | "
          "pose stream Hz / longest gap ms | ICP error at start p50 / max mm | s / episode |")


def render(meta: dict[str, Any], summaries: list[dict[str, Any]]) -> str:
    cfg = meta.get("config", {})
    lines = ["# Deployment rehearsal", "",
             f"`{meta.get('command', 'imgen rehearse')}`", "",
             f"{meta.get('machine', '')}; {meta.get('finished', meta.get('started', ''))}.", "",
             HEADER, "|" + "---|" * 13]
    lines += [row_line(s) for s in summaries]
    lines += ["", "## How", ""]
    safety = cfg.get("safety", {})
    lines += [
        f"- The real graph's nodes as separate processes over DDS in a private network namespace; sim_node is the "
        f"FR3 and the D415 (depth {cfg.get('depth_rate_hz', 30):g} Hz, ICP in cube_pose_estimator with the "
        f"calibration file {cfg.get('extrinsics_file', '')}), the reveal from contact_detector, no simulated human "
        f"(joy_teleop on an idle SpaceMouse stand-in).",
        f"- Episode i: scene seed {cfg.get('seed_base')} + i (imgen eval's trial i), horizon {cfg.get('horizon')} "
        f"control steps; success = the simulator's (episode_events SUCCESS). Pose error: "
        f"{cfg.get('pose_error')} (policy_node observation.noise.mode).",
        f"- {CORRUPTION_NOTE}",
        f"- Safety: {cfg.get('arbiter_file', 'config/arbiter.yaml')} (the real robot's): "
        f"{_num(safety.get('max_translation_m', None), '{:g}')} m / {_num(safety.get('max_rotation_rad'), '{:g}')} "
        f"rad per step, workspace {safety.get('workspace_min')}..{safety.get('workspace_max')}, faults latch. "
        f"'clipped' counts the commands that filter changed (ControlState.clipped_commands). A latched fault is "
        f"{'handed back to the policy by the driver (a resume)' if cfg.get('resume_latched') else 'left latched'}.",
        "- Input ages: LoopTiming.state_age_s / pose_age_s at each decision (robot state / depth frame "
        "measurement stamp to the command).",
        f"- DDS: {cfg.get('dds', 'Fast DDS')}.",
    ]
    scale = float(cfg.get("time_scale", 1.0))
    if scale != 1.0:
        lines.append(
            f"- Time scale {scale:g}: the graph ran at {scale:g} x real time. Every rate of every node was multiplied "
            f"by {scale:g} and every time-out and maximum age (the arbiter's watchdog, the policy's input ages, the "
            f"estimator's gap, the teleop heartbeat) divided by it, the contact detector's width-speed threshold "
            f"multiplied by it (rehearsal.plan.TIME_SCALED): per control step the same inputs, deadlines and "
            f"thresholds as at real time, with {1 / scale:g} x the wall time to compute them. It stands in for a "
            f"machine {1 / scale:g} x as fast, and is not a real-time test. Ages and wall times in the table are "
            f"wall-clock; times {scale:g} gives their real-time equivalent.")
    used = sorted({s["perturbation"] for s in summaries})
    for name in used:
        if name != "none":
            lines.append(f"- `{name}`: {cfg.get('perturbations', {}).get(name, PERTURBATIONS[name])}")
    notes = [(s["label"], s["perturbation"], n) for s in summaries for n in s.get("notes", [])]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {label} / {pert}: {note}" for label, pert, note in notes]
    return "\n".join(lines) + "\n"
