"""One markdown table per paper experiment, ours beside the paper's, from committed ``results.json`` files.

``docs/results/<run>/results.json`` is what ``imgen experiment`` writes. :func:`render` turns a set of
them into the section of ``docs/results.md`` that compares every table with the paper: our rate with
its 95 % Wilson interval (and, where a task's horizon was lengthened, the rate within the old one),
the paper's rate, the run's command, human model, wall time and commit. Experiments without a
committed run are listed as not run. :func:`write_section` replaces the text between two marker
lines of a markdown file, so the page is regenerated, never hand-copied::

    python -m imgen_ros.policy.paper_tables docs/results --write docs/results.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgen_ros.policy.experiment_report import _pct, follows_paper_selection, precision_flag, selection_score

BEGIN = "<!-- paper-tables:begin (python -m imgen_ros.policy.paper_tables docs/results --write docs/results.md) -->"
END = "<!-- paper-tables:end -->"
ORDER = ("block_grasp", "table1", "table2", "table3", "scaling", "budget", "seeds", "action_noise")


@dataclass(frozen=True)
class Run:
    path: Path
    summary: dict[str, Any]

    @property
    def experiment(self) -> str:
        return str(self.summary["experiment"])


def load_runs(results_dir: Path) -> list[Run]:
    """Every ``*/results.json`` under ``results_dir``; ValueError naming the file if one is not a results file."""
    runs = []
    for path in sorted(results_dir.glob("*/results.json")):
        try:
            summary = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from exc
        if not isinstance(summary, dict):
            raise ValueError(f"{path}: not an imgen experiment results file (not a JSON object)")
        missing = [k for k in ("experiment", "rows", "column_labels", "title") if k not in summary]
        if missing:
            raise ValueError(f"{path}: not an imgen experiment results file (no {', '.join(missing)})")
        runs.append(Run(path, summary))
    order = {name: i for i, name in enumerate(ORDER)}
    return sorted(runs, key=lambda r: (order.get(r.experiment, len(ORDER)), r.summary.get("seed", 0), str(r.path)))


def _ours(cell: dict[str, Any]) -> str:
    text = f"**{cell['success_rate']:.0%}** ({cell['ci_low']:.0%}–{cell['ci_high']:.0%})"
    early = cell.get("within_prior_horizon")
    if early:
        text += f"; {early['success_rate']:.0%} in {early['steps']} steps"
    return text


def render_run(run: Run, root: Path) -> list[str]:
    s = run.summary
    labels = list(s["column_labels"])
    scale = s.get("scale", {}).get("name", "?")
    rel = run.path.parent.relative_to(root) if run.path.is_relative_to(root) else run.path.parent
    reused = s.get("reused_steps", 0)
    reuse = f" for the {s['steps'] - reused} of {s['steps']} steps not reused from an earlier run" if reused else ""
    at_scale = "" if scale == "demo" else f", scale `{scale}`"  # the section is about demo scale
    if s.get("precision_note"):   # trained in another precision than its scale's (a CPU without bf16)
        at_scale += f", {s.get('precision', 'fp32')}"
    lines = [f"### {s['title']} — seed {s.get('seed', 0)}, {s.get('human', 'operator')} human{at_scale}", "",
             f"`imgen experiment {s['experiment']} --scale {scale} --seed {s.get('seed', 0)} "
             f"--human {s.get('human', 'operator')}{precision_flag(s)}`; "
             f"{s.get('wall_s', 0) / 60:.1f} min wall{reuse} on "
             f"{s.get('machine', '?')}, commit {s.get('commit') or '?'}, {s.get('finished_utc', '?')}. "
             f"Full report: [{rel}/results.md]({rel}/results.md).", ""]
    paper_protocol = follows_paper_selection(s)  # older runs selected on 20 rollouts: no such column
    head = ["Dataset"]
    for label in labels:
        head += [f"{label}: imgen (95% CI)", *([f"{label}: imgen, paper's protocol"] if paper_protocol else []),
                 "paper"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in s["rows"]:
        cells = [row["variant"]]
        for label in labels:
            cell = row["results"].get(label)
            cells += [_ours(cell) if cell else "—", *([selection_score(cell or {})] if paper_protocol else []),
                      _pct(row.get("paper", {}).get(label))]
        lines.append("| " + " | ".join(cells) + " |")
    for summary in s.get("seed_summaries", []):
        std = summary.get("std")
        lines += ["", f"{summary['group']} across training seeds ({summary['column']}): mean "
                      f"{summary['mean']:.1%}" + (f", sample std {std:.1%}" if std is not None else "")
                  + (f"; paper mean {summary['paper_mean']:.1%}" if summary.get("paper_mean") is not None else "")]
    lines.append("")
    return lines


def render(results_dir: Path) -> str:
    """The comparison section for every run under ``results_dir`` (missing experiments named)."""
    runs = load_runs(results_dir)
    lines = ["In every cell: our success rate, 95 % Wilson interval, and where the task's horizon was lengthened "
             "for the operator human (Block Grasp and Table 1 tasks: 400 steps, was 200; Nut-and-Peg: 550, was "
             "300) the rate within the old horizon from the same rollouts. I-MG is the paper's random source "
             "selection; I-MG (nearest source) is imgen's alternative. Each run's own report lists its deviations "
             "from the paper. Our rate is a separate 50-trial evaluation of the selected checkpoint on held-out "
             "seeds. Runs that scored every checkpoint on 50 selection rollouts, as the paper does, also give the "
             "paper's protocol: the best checkpoint's own 50-rollout score, which is optimistic by the choice. "
             "Earlier runs selected on 20 rollouts and have no such column.", ""]
    for run in runs:
        try:
            lines += render_run(run, results_dir.parent)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{run.path}: malformed results file ({type(exc).__name__}: {exc})") from exc
    done = {r.experiment for r in runs}
    missing = [name for name in ORDER if name not in done]
    if missing:
        lines += ["Not run at demo scale yet: " + ", ".join(f"`{m}`" for m in missing) + ".", ""]
    return "\n".join(lines)


def write_section(markdown_file: Path, section: str) -> None:
    """Replace the text between BEGIN and END in ``markdown_file`` (ValueError if the markers are missing)."""
    text = markdown_file.read_text()
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{markdown_file}: no '{BEGIN}' ... '{END}' markers to replace between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    markdown_file.write_text(f"{head}{BEGIN}\n{section.rstrip()}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imgen_ros.policy.paper_tables", description=__doc__.split("\n")[0])
    parser.add_argument("results_dir", type=Path, help="directory of experiment runs (each with results.json)")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help="replace the marked section of this file")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        parser.error(f"{args.results_dir}: not a directory")
    try:
        section = render(args.results_dir)
        if args.write:
            write_section(args.write, section)
        else:
            print(section)
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
