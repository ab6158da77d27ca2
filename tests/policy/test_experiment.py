"""The experiment pipeline: planning (fast) and the block_grasp smoke run end to end (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imgen_ros.cli.main import main
from imgen_ros.policy.experiment import build_plan, critical_path
from imgen_ros.policy.experiment_spec import ALL_VARIANTS


def test_block_grasp_plan_shares_artifacts_and_orders_dependencies(tmp_path: Path) -> None:
    plan = build_plan("block_grasp", "demo", tmp_path)
    assert set(v for v, _ in plan.eval_keys) == set(ALL_VARIANTS)
    # one base policy, deployed for interventions and I-MG, and evaluated as "Base"
    base = plan.train_keys[("Base", "block_grasp")]
    assert plan.steps["block_grasp/data/interventions_10"].deps == (base,)
    assert base in plan.steps["block_grasp/data/imgen_200"].deps
    assert base not in plan.steps["block_grasp/data/imgen_np_200"].deps
    assert plan.steps["block_grasp/data/imgen_np_200"].kwargs["policy_execution"] is False
    # Weighted Src Int = Source Int's files drawn 50/50
    weighted = plan.steps[plan.train_keys[("Weighted Src Int", "block_grasp")]].kwargs
    plain = plan.steps[plan.train_keys[("Source Int", "block_grasp")]].kwargs
    assert weighted["datasets"] == plain["datasets"] and weighted["weights"] == [1.0, 1.0]
    assert plain["weights"] is None
    # Source Demo / MG Demo come from the corrupted test environment, the base data from the clean one
    assert plan.steps["block_grasp/data/test_demos"].kwargs["noise"] == "on"
    assert plan.steps["block_grasp/data/src_demos"].kwargs["noise"] == "off"
    assert plan.steps["block_grasp/data/mg_demo_data"].kwargs["noise"] == "on"
    # every evaluation uses the same held-out seeds under corruption
    evals = [plan.steps[k].kwargs for k in plan.eval_keys.values()]
    assert {(e["seed_base"], e["noise"], e["trials"]) for e in evals} == {(1_000_000, "on", 50)}
    # the I-MG chain is the longest, so it starts first
    prio = critical_path(plan)
    assert prio["block_grasp/data/src_demos"] > prio["block_grasp/data/test_demos"]


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "scaling", "budget"])
def test_other_experiments_plan(name: str, tmp_path: Path) -> None:
    plan = build_plan(name, "paper", tmp_path)
    assert plan.eval_keys and all(plan.steps[k].fn == "evaluate_policy" for k in plan.eval_keys.values())


def test_unknown_names_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        build_plan("block_grasp", "huge", tmp_path)
    with pytest.raises(ValueError, match="unknown experiment"):
        build_plan("table9", "demo", tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # ~3 min on an idle 2-core machine; generous for a shared one
def test_block_grasp_smoke_writes_results_for_all_variants(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "smoke"
    assert main(["experiment", "block_grasp", "--scale", "smoke", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["variants"] == list(ALL_VARIANTS)
    assert [row["variant"] for row in results["rows"]] == list(ALL_VARIANTS)
    for row in results["rows"]:
        cell = row["results"]["Simulation"]
        assert cell["trials"] == 4 and 0.0 <= cell["success_rate"] <= 1.0
        assert Path(cell["checkpoint"]).is_file()
    assert (out / "results.md").read_text().count("|") > 20
    assert (out / "results.png").stat().st_size > 0
    # rerun: every step is reused, nothing recomputed
    capsys.readouterr()
    assert main(["experiment", "block_grasp", "--scale", "smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "25 steps, 25 reused" in printed and "start" not in printed
