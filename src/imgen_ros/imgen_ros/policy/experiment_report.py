"""results.json, results.md (the paper's table layout, paper numbers beside ours) and results.png."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from imgen_ros.policy.experiment_spec import describe, recipes
from imgen_ros.policy.plots import plot_table
from imgen_ros.policy.stats import wilson_interval
from imgen_ros.sim import task_class
from imgen_ros.sim.task_digest import task_digest


def precision_flag(summary: dict[str, Any]) -> str:
    """`` --precision P`` for a run not trained in float32, or not in its scale's precision (the command line
    that reproduces it)."""
    precision = summary.get("precision", "fp32")
    return "" if precision == "fp32" and not summary.get("precision_note") else f" --precision {precision}"


def task_deviations(exp: Any) -> list[str]:
    """The ``paper_deviations`` of the tasks the experiment's columns evaluate, each once, in column order."""
    out: list[str] = []
    for column in exp.columns:
        out += [d for d in task_class(column.task).paper_deviations if d not in out]
    return out


def precision_deviations(plan: Any) -> list[str]:
    """The training-precision deviation, if any (the paper trains in float32), and a fallback from the scale's."""
    note = getattr(plan, "precision_note", "")
    if note:
        return [f"scale {plan.scale.name} trains in {plan.scale.precision}, this run in {plan.precision}: {note}"]
    if getattr(plan, "precision", "fp32") == "fp32":
        return []
    return [f"training precision {plan.precision}: the LSTM's gradient steps in bfloat16 under CPU autocast, the "
            "encoder, GMM head, loss, weights and optimizer float32; rollouts and checkpoints float32 (paper: "
            "float32 throughout)"]


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def collect_rows(plan: Any, results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant with our numbers per column (+ derived mean columns) and the paper's."""
    exp = plan.experiment
    from imgen_ros.policy.experiment import group_name

    rows = []
    for variant in exp.variants:
        cells: dict[str, Any] = {}
        for column in exp.columns:
            ev = results[plan.eval_keys[(variant, column.label)]]
            train_key = plan.train_keys[(variant, group_name(column))]
            train = results[train_key]
            cells[column.label] = {
                "success_rate": ev["success_rate"], "successes": ev["successes"], "trials": ev["trials"],
                "ci_low": ev["ci_low"], "ci_high": ev["ci_high"], "mistakes": ev["mistakes"],
                "noise": ev["noise"], "observability": ev["observability"], "eval_seed_base": ev["seed_base"],
                "checkpoint": train["best_checkpoint"], "best_epoch": train["best_epoch"],
                "selection_success_rate": train.get("selection_success_rate"),
                "train_datasets": train["datasets"], "train_weights": train["weights"],
                "train_seed": plan.steps[train_key].kwargs["seed"],
                **_within_prior_horizon(ev),
            }
        for label in exp.mean_columns:
            k = sum(c["successes"] for c in cells.values())
            n = sum(c["trials"] for c in cells.values())
            low, high = wilson_interval(k, n)
            cells[label] = {"success_rate": k / n, "successes": k, "trials": n, "ci_low": low, "ci_high": high,
                            "derived": "mean of " + ", ".join(c.label for c in exp.columns)}
        row = {"variant": variant, "results": cells, "paper": exp.paper.get(variant, {})}
        same_as = recipes(plan.scale)[variant].same_as
        if same_as is not None:
            row["same_as"] = same_as  # the variant whose training and evaluation this row reports
        rows.append(row)
    return rows


# horizons before the operator human lengthened them (sim.task.Task.horizon); reported beside the new ones
PRIOR_HORIZONS = {"block_grasp": 200, "nut_insertion": 200, "two_piece_assembly": 200, "coffee": 200,
                  "nut_peg_assembly": 300}


def _within_prior_horizon(ev: dict[str, Any]) -> dict[str, Any]:
    """Successes reached within the task's prior horizon: exactly what an evaluation of the same seeds with that
    horizon gives (an episode's first steps do not depend on the horizon); empty for tasks whose horizon stayed."""
    prior = PRIOR_HORIZONS.get(str(ev.get("task")))
    trials = ev.get("per_trial") or []
    if prior is None or not trials:
        return {}
    k = sum(1 for t in trials if t["success"] and t["steps"] <= prior)
    return {"within_prior_horizon": {"steps": prior, "successes": k, "success_rate": k / len(trials)}}


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; None for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def seed_summaries(exp: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per seed group and column: the mean, sample std and range of the rows' success rates, ours and the paper's."""
    by_variant = {row["variant"]: row for row in rows}
    out = []
    for group, variants in exp.seed_groups.items():
        for label in (c.label for c in exp.columns):
            ours = [by_variant[v]["results"][label]["success_rate"] for v in variants]
            paper = [exp.paper[v][label] for v in variants if label in exp.paper.get(v, {})]
            mean, std = _mean_std(ours)
            summary = {"group": group, "column": label, "variants": list(variants), "success_rates": ours,
                       "mean": mean, "std": std, "min": min(ours), "max": max(ours),
                       "train_seeds": [by_variant[v]["results"][label]["train_seed"] for v in variants]}
            if paper:
                summary["paper_mean"], summary["paper_std"] = _mean_std(paper)
                summary["paper_success_rates"] = paper
            out.append(summary)
    return out


HUMAN_DEVIATIONS = {
    "operator": "source demos and interventions come from a simulated operator (imgen_ros.sim.operator), not a "
                "person: it takes over on what it sees (a misaligned approach, a failed grasp, a blocked motion) "
                "after a lognormal reaction delay (median 0.5 s, 0.25-1.2 s) while the policy keeps acting, and "
                "teleoperates the true poses at <= 0.15 m/s along uneven, curved paths with pauses, overshoot, a "
                "varied approach and sometimes a second attempt; the generator still stops the policy on its "
                "contact-based mistake detector",
    "oracle": "source demos and interventions come from the oracle human (--human oracle): the scripted expert on "
              "true poses, taking over at the step the generator's own mistake detector fires; this flatters I-MG "
              "(every source recovery starts where I-MG stops the policy)",
}


def time_split(plan: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Where the experiment's step time went (single-core step seconds, summed; steps run ``workers`` at a
    time, so these add up to more than the wall time): per step kind, and training split into gradient
    epochs and checkpoint-selection rollouts (``experiment_jobs.training_time_split``)."""
    by_kind: dict[str, float] = {}
    grad = selection = 0.0
    for key, res in results.items():
        step = plan.steps.get(key)
        if step is None:
            continue
        by_kind[step.fn] = by_kind.get(step.fn, 0.0) + float(res.get("wall_s", 0.0))
        grad += float(res.get("grad_s", 0.0))
        selection += float(res.get("selection_s", 0.0))
    total = sum(by_kind.values())
    return {"step_s_by_kind": {k: round(v, 1) for k, v in sorted(by_kind.items())}, "step_s_total": round(total, 1),
            "train_grad_s": round(grad, 1), "train_selection_rollouts_s": round(selection, 1),
            "selection_rollouts_share": round(selection / total, 4) if total > 0 else None}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


PAPER_SELECTION_TRIALS = 50  # the paper scores every evaluated checkpoint on 50 trials and reports the best one's


def follows_paper_selection(summary: dict[str, Any]) -> bool:
    """Whether the run scored its checkpoints on as many rollouts as the paper, so that the selected
    checkpoint's own selection score is the paper's reported number (on our selection seeds)."""
    return int(summary.get("scale", {}).get("train", {}).get("eval_trials", 0)) >= PAPER_SELECTION_TRIALS


def selection_score(cell: dict[str, Any]) -> str:
    """The selected checkpoint's own selection score ("—" for derived cells and runs that did not record it)."""
    return _pct(cell.get("selection_success_rate"))


def _seed_lines(summaries: list[dict[str, Any]]) -> list[str]:
    if not summaries:
        return []
    lines = ["## Across training seeds", "",
             "| rows | column | training seeds | imgen mean ± std | imgen range | paper mean ± std |",
             "|---|---|---|---|---|---|"]
    for s in summaries:
        paper = (f"{s['paper_mean']:.1%} ± {_pct1(s['paper_std'])}" if "paper_mean" in s else "—")
        lines.append(f"| {s['group']} | {s['column']} | {', '.join(map(str, s['train_seeds']))} | "
                     f"{s['mean']:.1%} ± {_pct1(s['std'])} | {s['min']:.0%}–{s['max']:.0%} | {paper} |")
    return [*lines, "", "std: sample standard deviation (n - 1) over the seeds' success rates.", ""]


def _pct1(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _lr_decay(train: dict[str, Any]) -> str:
    factor = train.get("lr_end_factor", 1.0)
    return "" if factor == 1.0 else f" decayed linearly to {factor:g}x by the last epoch"


def _train_seeds(summary: dict[str, Any]) -> str:
    seeds = sorted({cell["train_seed"] for row in summary["rows"] for cell in row["results"].values()
                    if "train_seed" in cell})
    s = summary["seed"]
    return ", ".join(f"seed + {t - s}" for t in seeds) or "seed + 1"


def render_markdown(summary: dict[str, Any]) -> str:
    labels = summary["column_labels"]
    lines = [f"# {summary['title']}", "",
             f"`imgen experiment {summary['experiment']} --scale {summary['scale']['name']} --seed {summary['seed']}"
             f" --human {summary.get('human', 'operator')}{precision_flag(summary)}`"
             f" — {summary['finished_utc']}, wall time {summary['wall_s'] / 60:.1f} min on {summary['machine']}"
             f" (commit {summary['commit'] or 'unknown'}).", ""]
    trials = summary["scale"]["train"]["eval_trials"]
    head = ["Dataset"]
    for label in labels:
        head += [f"{label} (imgen)", "95% CI", f"{label}: selected checkpoint's own score", f"{label} (paper)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in summary["rows"]:
        cells = [row["variant"]]
        for label in labels:
            r = row["results"][label]
            early = r.get("within_prior_horizon")
            within = f"; {early['success_rate']:.0%} within {early['steps']} steps" if early else ""
            cells += [f"**{r['success_rate']:.0%}** ({r['successes']}/{r['trials']}{within})",
                      f"{r['ci_low']:.0%}–{r['ci_high']:.0%}", selection_score(r), _pct(row["paper"].get(label))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"imgen: a separate {summary['scale']['final_trials']}-trial evaluation of the selected checkpoint "
              f"on held-out seeds. Selected checkpoint's own score: its rate on the {trials} selection rollouts that "
              "chose it, the best of every evaluated checkpoint"
              + (" — the paper's reported number (the best checkpoint's own 50-trial score), optimistic by the choice."
                 if follows_paper_selection(summary) else
                 f" (the paper scores each checkpoint on {PAPER_SELECTION_TRIALS} trials; {trials} are fewer, so "
                 "this is not the paper's number).")]
    shared = [f"{row['variant']} = {row['same_as']}" for row in summary["rows"] if row.get("same_as")]
    if shared:
        lines += ["", "Rows that are another recipe's training under another name (same data, weights and seed; "
                  "one training and evaluation): " + "; ".join(shared) + "."]
    reused = summary.get("reused_steps", 0)
    if reused:
        lines += ["", f"{reused} of {summary['steps']} steps were reused from earlier runs in the output directory "
                  "(same arguments); the wall time above covers only the rest, the step times below all of them."]
    lines += ["", "![results](results.png)", ""]
    lines += _seed_lines(summary.get("seed_summaries", []))
    if summary.get("note"):
        lines += [summary["note"], ""]
    lines += ["## Protocol", "",
              "- Every variant is BC-RNN-GMM (robomimic 0.3.0) trained on its own dataset; checkpoint selected by "
              "rollouts on selection seeds, then evaluated on the same held-out seeds "
              f"({summary['eval_seed_base']} + i) under corruption.",
              f"- Scale `{summary['scale']['name']}`: base D = {summary['scale']['base_generated']} MimicGen demos "
              f"from 10, MG Demo {summary['scale']['mg_demo_generated']}, I-MG {summary['scale']['imgen_generated']} "
              f"from 10 interventions; training {summary['scale']['train']['epochs']} epochs x "
              f"{summary['scale']['train']['steps_per_epoch']} steps, batch {summary['scale']['train']['batch_size']}, "
              f"LSTM {summary['scale']['train']['rnn_num_layers']}x{summary['scale']['train']['rnn_hidden_dim']}, "
              f"GMM {summary['scale']['train']['gmm_modes']} modes, lr {summary['scale']['train']['learning_rate']}"
              f"{_lr_decay(summary['scale']['train'])}; "
              f"{summary['scale']['final_trials']} evaluation trials.",
              f"- Seeds: experiment seed {summary['seed']} (data seeds 1000*seed + k, training seed "
              f"{_train_seeds(summary)})."]
    if summary.get("task_definitions"):
        lines.append("- Task definitions (`sim.task_digest`: the compiled scene and the task's settings): "
                     + ", ".join(f"{t} `{d}`" for t, d in summary["task_definitions"].items()) + ".")
    lines.append("")
    if summary["deviations"]:
        lines += ["## Deviations from the paper's protocol", ""]
        lines += [f"- {d}" for d in summary["deviations"]]
        lines.append("")
    lines += ["## Datasets", "", "| artifact | episodes | samples | generation attempts | action noise |",
              "|---|---|---|---|---|"]
    for key, d in summary["datasets"].items():
        lines.append(f"| {key} | {d['demos']} | {d['samples']} | {d.get('attempts', '—')} | "
                     f"{d.get('action_noise', '—')} |")
    split = summary.get("time_split")
    if split:
        lines += ["", "## Where the time went", "",
                  f"Step time (single-core seconds, summed over steps): {split['step_s_total']:.0f} s — "
                  + ", ".join(f"{k} {v:.0f} s" for k, v in split["step_s_by_kind"].items())
                  + f"; of training, gradient epochs {split['train_grad_s']:.0f} s and checkpoint-selection "
                  f"rollouts {split['train_selection_rollouts_s']:.0f} s"
                  + (f" ({split['selection_rollouts_share']:.0%} of all step time)."
                     if split["selection_rollouts_share"] is not None else ".")]
    lines += ["", "## Step times (s)", "", "| step | wall s |", "|---|---|"]
    for key, t in summary["step_wall_s"].items():
        lines.append(f"| {key} | {t:.0f} |")
    return "\n".join(lines) + "\n"


def render_table(summary: dict[str, Any]) -> str:
    """Plain-text table for the terminal."""
    labels = summary["column_labels"]
    width = max(len(r["variant"]) for r in summary["rows"]) + 2
    head = "Dataset".ljust(width) + "".join(f"{label[:22]:>24}{'paper':>8}" for label in labels)
    out = [summary["title"], head, "-" * len(head)]
    for row in summary["rows"]:
        line = row["variant"].ljust(width)
        for label in labels:
            r = row["results"][label]
            ours = f"{r['success_rate']:.0%} [{r['ci_low']:.0%}-{r['ci_high']:.0%}]"
            line += f"{ours:>24}{_pct(row['paper'].get(label)):>8}"
        out.append(line)
    for s in summary.get("seed_summaries", []):
        paper = f", paper {s['paper_mean']:.1%} ± {_pct1(s['paper_std'])}" if "paper_mean" in s else ""
        out.append(f"{s['group']} over training seeds ({s['column']}): {s['mean']:.1%} ± {_pct1(s['std'])} "
                   f"(range {s['min']:.0%}–{s['max']:.0%}){paper}")
    return "\n".join(out)


def write_report(plan: Any, results: dict[str, Any], wall_s: float) -> dict[str, Any]:
    exp = plan.experiment
    rows = collect_rows(plan, results)
    labels = [c.label for c in exp.columns] + list(exp.mean_columns)
    datasets = {key.split("/data/")[0] + "/" + key.split("/data/")[1]: {k: v for k, v in res.items()
                                                                          if k in ("demos", "samples", "attempts",
                                                                                   "outcomes", "path",
                                                                                   "action_noise")}
                for key, res in results.items() if "/data/" in key}
    human = getattr(plan, "human", "operator")
    summary = {
        "experiment": exp.name, "title": exp.title, "scale": describe(plan.scale), "seed": plan.seed, "human": human,
        "variants": list(exp.variants), "columns": [asdict(c) for c in exp.columns], "column_labels": labels,
        "rows": rows, "seed_summaries": seed_summaries(exp, rows), "note": exp.note,
        "deviations": [*plan.scale.deviations, HUMAN_DEVIATIONS[human], *precision_deviations(plan),
                       *task_deviations(exp)],
        "task_definitions": {c.task: task_digest(c.task) for c in exp.columns},
        "precision": getattr(plan, "precision", "fp32"),
        "precision_note": getattr(plan, "precision_note", ""),
        "eval_seed_base": next(iter(results[k]["seed_base"] for k in plan.eval_keys.values())),
        "datasets": datasets, "step_wall_s": {k: float(r.get("wall_s", 0.0)) for k, r in results.items()},
        "time_split": time_split(plan, results),
        "steps": len(plan.steps), "reused_steps": len(getattr(plan, "reused", ())),
        "wall_s": wall_s, "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {_cpus()} CPUs", "commit": _git_commit(), "out": str(plan.out),
    }
    out = plan.out
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    ours = {(row["variant"], label): (row["results"][label]["success_rate"], row["results"][label]["ci_low"],
                                      row["results"][label]["ci_high"]) for row in rows for label in labels}
    plot_table(list(exp.variants), labels, ours, exp.paper, out / "results.png", exp.title)
    (out / "results.md").write_text(render_markdown(summary))
    summary["table"] = render_table(summary)
    return summary


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
