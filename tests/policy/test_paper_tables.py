"""The docs/results.md comparison tables are rendered from results.json files, never hand-copied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imgen_ros.policy.paper_tables import BEGIN, END, main, render, write_section


def _results(tmp: Path, name: str, experiment: str, rate: float, early: float | None = None,
             reused: int = 0, selection_trials: int = 20) -> None:
    cell = {"success_rate": rate, "ci_low": rate - 0.1, "ci_high": rate + 0.05, "successes": int(rate * 50),
            "trials": 50, "selection_success_rate": 0.9}
    if early is not None:
        cell["within_prior_horizon"] = {"steps": 200, "successes": int(early * 50), "success_rate": early}
    scale = {"name": "demo", "train": {"eval_trials": selection_trials}}
    doc = {"experiment": experiment, "title": f"Title of {experiment}", "scale": scale, "seed": 1,
           "human": "operator", "column_labels": ["Simulation"], "wall_s": 600.0, "machine": "x86_64, 2 CPUs",
           "commit": "abc1234", "finished_utc": "2026-11-30",
           "rows": [{"variant": "I-MG", "results": {"Simulation": cell}, "paper": {"Simulation": 1.0}},
                    {"variant": "I-MG (nearest source)", "results": {"Simulation": cell}, "paper": {}}],
           "steps": 18, "reused_steps": reused}
    (tmp / name).mkdir(parents=True)
    (tmp / name / "results.json").write_text(json.dumps(doc))


def test_tables_put_ours_beside_the_paper_and_name_what_was_not_run(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _results(root, "block_grasp_seed1", "block_grasp", 0.82, early=0.6)
    text = render(root)
    assert "`imgen experiment block_grasp --scale demo --seed 1 --human operator`" in text
    assert "— seed 1, operator human" in text
    assert "| I-MG | **82%** (72%–87%); 60% in 200 steps | 100% |" in text
    assert "| I-MG (nearest source) | **82%** (72%–87%); 60% in 200 steps | — |" in text
    assert "10.0 min wall" in text
    assert "Not run at demo scale yet: `table1`" in text and "`block_grasp`" not in text.split("Not run")[1]
    assert "reused" not in text


def test_a_run_selected_on_50_rollouts_also_gives_the_papers_protocol(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _results(root, "block_grasp_seed0", "block_grasp", 0.82, selection_trials=50)
    _results(root, "block_grasp_seed1", "block_grasp", 0.82)
    seed0, seed1 = render(root).split("### ")[1:]
    assert "block_grasp_seed0/results.md" in seed0 and "block_grasp_seed1/results.md" in seed1
    assert "| Dataset | Simulation: imgen (95% CI) | Simulation: imgen, paper's protocol | paper |" in seed0
    assert "| I-MG | **82%** (72%–87%) | 90% | 100% |" in seed0
    assert "paper's protocol" not in seed1 and "| I-MG | **82%** (72%–87%) | 100% |" in seed1


def test_a_run_that_reused_steps_says_what_its_wall_time_covers(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _results(root, "seeds_seed0", "seeds", 0.6, reused=10)
    assert "10.0 min wall for the 8 of 18 steps not reused from an earlier run" in render(root)


def test_a_run_that_fell_back_from_its_scales_precision_says_so_in_its_heading(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _results(root, "block_grasp_seed0", "block_grasp", 0.7)
    doc = json.loads((root / "block_grasp_seed0" / "results.json").read_text())
    doc.update(precision="fp32", precision_note="bf16 fell back to fp32: no bfloat16 LSTM on this processor")
    (root / "block_grasp_seed0" / "results.json").write_text(json.dumps(doc))
    text = render(root)
    assert "— seed 1, operator human, fp32\n" in text
    assert "--human operator --precision fp32`" in text


def test_write_section_replaces_only_the_marked_text(tmp_path: Path) -> None:
    page = tmp_path / "results.md"
    page.write_text(f"# head\nkeep\n{BEGIN}\nold table\n{END}\ntail stays\n")
    write_section(page, "new table\n")
    assert page.read_text() == f"# head\nkeep\n{BEGIN}\nnew table\n{END}\ntail stays\n"
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        write_section(page, "x")


def test_a_broken_results_file_is_a_one_line_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text("{\"rows\": []}")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path)])
    assert exc.value.code == 2
    assert "not an imgen experiment results file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])


def test_a_row_without_results_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(
        {"experiment": "table1", "title": "t", "column_labels": ["A"], "rows": [{"variant": "Base"}]}))
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path)])
    assert exc.value.code == 2 and "malformed results file" in capsys.readouterr().err
    (tmp_path / "run" / "results.json").write_text("[1, 2]")
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "not a JSON object" in capsys.readouterr().err
