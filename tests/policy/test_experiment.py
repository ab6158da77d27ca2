"""The experiment pipeline: planning (fast) and the block_grasp, seeds and action_noise smoke runs end to end
(slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imgen_ros.cli.experiment import NAMES
from imgen_ros.cli.main import main
from imgen_ros.data.reader import DatasetReader
from imgen_ros.policy.experiment import EXPERIMENT_NAMES, _Artifacts, build_plan, critical_path, parse_artifact, slug
from imgen_ros.policy.experiment_report import seed_summaries, task_deviations
from imgen_ros.policy.experiment_spec import (
    ALL_VARIANTS,
    NEAREST_VARIANT,
    SCALES,
    TABLE4_VARIANTS,
    Column,
    experiments,
    noise_variants,
    seed_variant,
)


def test_block_grasp_plan_shares_artifacts_and_orders_dependencies(tmp_path: Path) -> None:
    plan = build_plan("block_grasp", "demo", tmp_path)
    assert set(v for v, _ in plan.eval_keys) == set(TABLE4_VARIANTS)
    # one base policy, deployed for interventions and I-MG, and evaluated as "Base"
    base = plan.train_keys[("Base", "block_grasp")]
    assert plan.steps["block_grasp/data/interventions_10"].deps == (base,)
    assert base in plan.steps["block_grasp/data/imgen_200"].deps
    assert base not in plan.steps["block_grasp/data/imgen_np_200"].deps
    assert plan.steps["block_grasp/data/imgen_np_200"].kwargs["policy_execution"] is False
    # Weighted Src Int (a Table 1 row) = Source Int's files drawn 50/50
    table1 = build_plan("table1", "demo", tmp_path / "t1")
    assert set(v for v, _ in table1.eval_keys) == set(ALL_VARIANTS)
    weighted = table1.steps[table1.train_keys[("Weighted Src Int", "nut_insertion")]].kwargs
    plain = table1.steps[table1.train_keys[("Source Int", "nut_insertion")]].kwargs
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


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "scaling", "budget", "seeds", "action_noise"])
def test_other_experiments_plan(name: str, tmp_path: Path) -> None:
    plan = build_plan(name, "paper", tmp_path)
    assert plan.eval_keys and all(plan.steps[k].fn == "evaluate_policy" for k in plan.eval_keys.values())


def test_experiment_names_agree_everywhere() -> None:
    for scale in SCALES.values():
        assert tuple(experiments(scale)) == EXPERIMENT_NAMES == NAMES


def test_seeds_plan_trains_the_same_datasets_with_three_training_seeds(tmp_path: Path) -> None:
    plan = build_plan("seeds", "demo", tmp_path, seed=5)
    assert plan.experiment.variants == tuple(seed_variant(k, nearest) for k in (1, 2, 3) for nearest in (False, True))
    trains = {v: plan.steps[plan.train_keys[(v, "nut_insertion")]].kwargs for v in plan.experiment.variants}
    for nearest, artifact in ((False, "imgen_200"), (True, "imgen_nearest_200")):
        runs = [trains[seed_variant(k, nearest)] for k in (1, 2, 3)]
        assert [r["seed"] for r in runs] == [6, 7, 8]  # experiment seed 5 + 1, 2, 3
        assert len({r["out_dir"] for r in runs}) == 3
        assert all(r["datasets"] == runs[0]["datasets"] for r in runs)
        assert [Path(d).stem for d in runs[0]["datasets"]] == ["base_data", artifact]
    # one dataset of each kind, generated once from the one base policy (itself trained with seed + 1)
    data = sorted(k.split("/data/")[1] for k in plan.steps if "/data/" in k)
    assert data == ["base_data", "imgen_200", "imgen_nearest_200", "interventions_10", "src_demos"]
    assert plan.steps["nut_insertion/train/base"].kwargs["seed"] == 6
    assert {c.task for c in plan.experiment.columns} == {"nut_insertion"}
    assert plan.experiment.paper[seed_variant(2)] == {"Nut Insertion": 1.00}
    assert set(plan.experiment.seed_groups) == {"I-MG", "I-MG (nearest source)"}


def test_action_noise_plan_generates_low_noise_interventions_beside_the_default_ones(tmp_path: Path) -> None:
    plan = build_plan("action_noise", "demo", tmp_path)
    generate = {k.split("/data/")[1]: s.kwargs for k, s in plan.steps.items() if s.fn == "generate"}
    assert set(generate) == {"base_data", "imgen_np_200", "imgen_200", "imgen_nearest_200",
                             "imgen_np_200_action_noise_0_005", "imgen_200_action_noise_0_005",
                             "imgen_nearest_200_action_noise_0_005"}
    assert "action_noise" not in generate["base_data"]  # D (and so the base policy) is shared
    for artifact in ("imgen_np_200", "imgen_200", "imgen_nearest_200"):
        default, low = generate[artifact], generate[f"{artifact}_action_noise_0_005"]
        assert "action_noise" not in default and low["action_noise"] == 0.005
        assert low["out"] != default["out"]
        # otherwise the same generation: same sources, policy, seed and selection
        assert {k: v for k, v in low.items() if k not in ("out", "action_noise")} == \
               {k: v for k, v in default.items() if k != "out"}
    for noise, suffix in ((0.05, ""), (0.005, "_action_noise_0_005")):
        no_policy, imgen, nearest = noise_variants(noise)
        for variant, artifact in ((no_policy, "imgen_np_200"), (imgen, "imgen_200"), (nearest, "imgen_nearest_200")):
            datasets = plan.steps[plan.train_keys[(variant, "nut_insertion")]].kwargs["datasets"]
            assert [Path(d).stem for d in datasets] == ["base_data", artifact + suffix]
    assert plan.experiment.paper[noise_variants(0.005)[0]] == {"Nut Insertion": 0.66}
    # default-noise steps are exactly table1's Nut Insertion steps (a shared --out would reuse them)
    table1 = build_plan("table1", "demo", tmp_path)
    for key in ("nut_insertion/data/imgen_200", "nut_insertion/data/imgen_np_200", "nut_insertion/train/base"):
        assert plan.steps[key].kwargs == table1.steps[key].kwargs


def test_artifact_options_are_checked(tmp_path: Path) -> None:
    assert parse_artifact("imgen_np@200:action_noise=0.005") == ("imgen_np", "200", {"action_noise": "0.005"})
    assert parse_artifact("base_data") == ("base_data", "", {})
    for bad in ("imgen@200:noise=0.1", "imgen@200:action_noise"):
        with pytest.raises(ValueError, match="options must be"):
            parse_artifact(bad)
    artifacts = _Artifacts(build_plan("seeds", "smoke", tmp_path), Column("Nut Insertion", "nut_insertion"),
                           "nut_insertion")
    with pytest.raises(ValueError, match="only generated datasets"):
        artifacts.dataset("recovery@10:action_noise=0.005")
    assert artifacts.dataset("base_data:action_noise=0.01")[1].endswith("base_data_action_noise_0_01.hdf5")


def test_seed_summaries_report_mean_and_sample_spread() -> None:
    exp = experiments(SCALES["smoke"])["seeds"]
    rows = [{"variant": v, "results": {"Nut Insertion": {"success_rate": rate, "train_seed": k}}}
            for v, rate, k in zip(exp.variants, (0.5, 0.25, 0.75, 0.25, 1.0, 0.25), (1, 1, 2, 2, 3, 3), strict=True)]
    imgen, nearest = seed_summaries(exp, rows)
    assert imgen["group"] == "I-MG" and imgen["success_rates"] == [0.5, 0.75, 1.0]
    assert imgen["mean"] == pytest.approx(0.75) and imgen["std"] == pytest.approx(0.25)
    assert (imgen["min"], imgen["max"], imgen["train_seeds"]) == (0.5, 1.0, [1, 2, 3])
    assert imgen["paper_mean"] == pytest.approx(0.98667, abs=1e-4)
    assert imgen["paper_std"] == pytest.approx(0.011547, abs=1e-5)
    assert nearest["std"] == 0.0 and "paper_mean" not in nearest


def test_reports_name_each_evaluated_task_s_deviations_once() -> None:
    exps = experiments(SCALES["smoke"])
    nut = task_deviations(exps["table1"])
    assert len(nut) == 1 and nut[0].startswith("Nut Insertion: imgen's nut fits its peg with 2.5 mm clearance")
    assert task_deviations(exps["seeds"]) == nut          # three seed rows of one task: listed once
    assert task_deviations(exps["block_grasp"]) == []


def test_fast_scale_drops_holds_trains_fewer_bf16_steps_and_an_explicit_precision_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgen_ros.policy import precision

    monkeypatch.setattr(precision, "bf16_unavailable_reason", lambda: None)  # a CPU with a bfloat16 LSTM
    fast, demo = build_plan("block_grasp", "fast", tmp_path), build_plan("block_grasp", "demo", tmp_path)
    assert fast.precision == "bf16" and demo.precision == "fp32"

    def kwargs_of(plan, kind: str) -> dict[str, dict]:
        return {k.split("/", 1)[1]: s.kwargs for k, s in plan.steps.items() if s.fn == kind}

    # the same datasets and evaluations, but generation without the sources' holds; the training differs
    for kind in ("collect_demos", "collect_interventions", "evaluate_policy"):
        assert kwargs_of(fast, kind) == kwargs_of(demo, kind)
    generated = kwargs_of(fast, "generate")
    assert generated and all(kw.pop("drop_holds") is True for kw in generated.values())
    assert generated == kwargs_of(demo, "generate")
    trained = kwargs_of(fast, "train_policy")
    assert trained and all(kw["size"]["precision"] == "bf16" and kw["size"]["epochs"] == 240 for kw in trained.values())
    assert all("precision" not in kw["size"] for kw in kwargs_of(demo, "train_policy").values())
    assert build_plan("block_grasp", "fast", tmp_path, precision="fp32").precision == "fp32"


def test_fast_scale_on_a_cpu_without_a_bf16_lstm_trains_in_fp32_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgen_ros.policy import precision
    from imgen_ros.policy.experiment_report import precision_deviations, precision_flag

    monkeypatch.setattr(precision, "bf16_unavailable_reason", lambda: "no bfloat16 LSTM (stand-in)")
    fast = build_plan("block_grasp", "fast", tmp_path)
    assert fast.precision == "fp32" and "no bfloat16 LSTM (stand-in)" in fast.precision_note
    assert all("precision" not in s.kwargs["size"] for s in fast.steps.values() if s.fn == "train_policy")
    assert precision_deviations(fast) == ["scale fast trains in bf16, this run in fp32: bf16 fell back to fp32: "
                                          "no bfloat16 LSTM (stand-in)"]
    assert precision_flag({"precision": "fp32", "precision_note": fast.precision_note}) == " --precision fp32"
    with pytest.raises(ValueError, match="precision 'bf16' cannot run here"):
        build_plan("block_grasp", "fast", tmp_path, precision="bf16")
    assert build_plan("block_grasp", "demo", tmp_path).precision_note == ""


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
    assert results["variants"] == list(TABLE4_VARIANTS)
    assert [row["variant"] for row in results["rows"]] == list(TABLE4_VARIANTS)
    for row in results["rows"]:
        cell = row["results"]["Simulation"]
        assert cell["trials"] == 4 and 0.0 <= cell["success_rate"] <= 1.0
        # the old 200-step horizon's result, from the same rollouts: never more than the full horizon's
        early = cell["within_prior_horizon"]
        assert early["steps"] == 200 and 0 <= early["successes"] <= cell["successes"]
        assert Path(cell["checkpoint"]).is_file()
    md = (out / "results.md").read_text()
    for row in results["rows"]:  # each row also gives its checkpoint's own selection score
        (line,) = [line for line in md.splitlines() if line.startswith(f"| {row['variant']} |")]
        assert f"| {row['results']['Simulation']['selection_success_rate']:.0%} |" in line
    assert "this is not the paper's number" in md  # smoke selects on 2 rollouts, the paper on 50
    from imgen_ros.sim.task_digest import task_digest

    assert results["task_definitions"] == {"block_grasp": task_digest("block_grasp")}  # which scene was run
    assert f"block_grasp `{task_digest('block_grasp')}`" in md
    assert (out / "results.png").stat().st_size > 0
    # rerun: every step is reused, nothing recomputed
    capsys.readouterr()
    assert main(["experiment", "block_grasp", "--scale", "smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "21 steps, 21 reused" in printed and "start" not in printed


def _markers(out: Path, fn: str) -> dict[str, dict]:
    records = (json.loads(p.read_text()) for p in sorted((out / "steps").glob("*.json")))
    return {r["kwargs"].get("out_dir") or r["kwargs"].get("out"): r for r in records if r["fn"] == fn}


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_seeds_smoke_trains_three_seeds_on_the_same_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "seeds"
    assert main(["experiment", "seeds", "--scale", "smoke", "--seed", "2", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    variants = [seed_variant(k, nearest) for k in (1, 2, 3) for nearest in (False, True)]
    assert [row["variant"] for row in results["rows"]] == variants
    trains = _markers(out, "train_policy")
    by_variant = {Path(d).name: r for d, r in trains.items()}
    for nearest in (False, True):
        # training seed 1 is the plain I-MG row's training (one step under the first recipe's name)
        first = slug(NEAREST_VARIANT if nearest else "I-MG")
        runs = [by_variant[first if k == 1 else slug(seed_variant(k, nearest))] for k in (1, 2, 3)]
        assert [r["kwargs"]["seed"] for r in runs] == [3, 4, 5]  # experiment seed 2 + 1, 2, 3
        assert all(r["kwargs"]["datasets"] == runs[0]["kwargs"]["datasets"] for r in runs)
        assert len({r["result"]["best_checkpoint"] for r in runs}) == 3
    cells = {row["variant"]: row["results"]["Nut Insertion"] for row in results["rows"]}
    assert [cells[seed_variant(k)]["train_seed"] for k in (1, 2, 3)] == [3, 4, 5]
    assert all(c["trials"] == 4 and Path(c["checkpoint"]).is_file() for c in cells.values())
    assert [s["group"] for s in results["seed_summaries"]] == ["I-MG", "I-MG (nearest source)"]
    assert results["seed_summaries"][0]["paper_success_rates"] == [0.98, 1.00, 0.98]
    md = (out / "results.md").read_text()
    assert "## Across training seeds" in md and "seed + 1, seed + 2, seed + 3" in md
    assert (out / "results.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["experiment", "seeds", "--scale", "smoke", "--seed", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "18 steps, 18 reused" in printed and "start" not in printed
    rows = {row["variant"]: row for row in results["rows"]}
    assert rows[seed_variant(1)]["same_as"] == "I-MG" and "same_as" not in rows[seed_variant(2)]
    assert "I-MG (training seed 1) = I-MG" in md


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", ["table1", "table2", "table3", "scaling", "budget"])
def test_every_other_experiment_runs_at_smoke_scale(name: str, tmp_path: Path) -> None:
    """The pipeline of each paper table end to end (block_grasp, seeds, action_noise have their own)."""
    out = tmp_path / name
    assert main(["experiment", name, "--scale", "smoke", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    plan = build_plan(name, "smoke", out)
    assert [row["variant"] for row in results["rows"]] == list(plan.experiment.variants)
    for row in results["rows"]:
        for column in plan.experiment.columns:
            cell = row["results"][column.label]
            assert cell["trials"] == 4 and 0 <= cell["successes"] <= 4 and Path(cell["checkpoint"]).is_file()
            assert cell["noise"] == column.noise and cell["observability"] == column.observability
        for label in plan.experiment.mean_columns:  # table2's Mixture: both geometries' trials
            assert row["results"][label]["trials"] == 4 * len(plan.experiment.columns)
    md = (out / "results.md").read_text()
    assert all(f"| {v} |" in md for v in plan.experiment.variants)
    assert (out / "results.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_action_noise_smoke_generates_low_noise_interventions(tmp_path: Path) -> None:
    out = tmp_path / "action_noise"
    assert main(["experiment", "action_noise", "--scale", "smoke", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [row["variant"] for row in results["rows"]] == [*noise_variants(0.05), *noise_variants(0.005)]
    data = out / "nut_insertion" / "data"
    for artifact in ("imgen_np_6", "imgen_6", "imgen_nearest_6"):
        for path, noise in ((data / f"{artifact}.hdf5", 0.05), (data / f"{artifact}_action_noise_0_005.hdf5", 0.005)):
            with DatasetReader(path) as reader:
                assert reader.json_attr("imgen_config")["job"]["params"]["replay"]["action_noise"] == noise
            assert results["datasets"][f"nut_insertion/{path.stem}"]["action_noise"] == noise
    with DatasetReader(data / "base_data.hdf5") as reader:  # D keeps the default noise
        assert reader.json_attr("imgen_config")["job"]["params"]["replay"]["action_noise"] == 0.05
    trained = {Path(k).name: [Path(d).stem for d in r["kwargs"]["datasets"]]
               for k, r in _markers(out, "train_policy").items()}
    assert trained["i_mg_policy_action_noise_0_005"] == ["base_data", "imgen_np_6_action_noise_0_005"]
    assert trained["i_mg"] == ["base_data", "imgen_6"]  # the default noise is the plain I-MG recipe
    for row in results["rows"]:
        assert row["results"]["Nut Insertion"]["trials"] == 4
    assert "| I-MG - Policy (action noise 0.005) |" in (out / "results.md").read_text()


def test_success_within_the_prior_horizon_counts_only_early_successes() -> None:
    from imgen_ros.policy.experiment_report import _within_prior_horizon

    trials = [{"success": True, "steps": 150}, {"success": True, "steps": 250}, {"success": False, "steps": 400},
              {"success": True, "steps": 200}]
    early = _within_prior_horizon({"task": "block_grasp", "per_trial": trials})["within_prior_horizon"]
    assert early == {"steps": 200, "successes": 2, "success_rate": 0.5}
    # Nut-and-Peg's was 300 steps
    early = _within_prior_horizon({"task": "nut_peg_assembly", "per_trial": trials})["within_prior_horizon"]
    assert early == {"steps": 300, "successes": 3, "success_rate": 0.75}
    # a task whose horizon never changed: nothing to report
    assert _within_prior_horizon({"task": "some_new_task", "per_trial": trials}) == {}


def test_identical_recipes_share_one_training_and_evaluation(tmp_path: Path) -> None:
    table1 = build_plan("table1", "demo", tmp_path)
    seeds = build_plan("seeds", "demo", tmp_path)
    noise = build_plan("action_noise", "demo", tmp_path)
    scaling = build_plan("scaling", "demo", tmp_path / "scaling")
    # training seed 1 and the default action noise are table1's own I-MG rows: same step keys, same arguments
    for plan, variant, table1_variant in ((seeds, seed_variant(1), "I-MG"),
                                          (seeds, seed_variant(1, nearest=True), "I-MG (nearest source)"),
                                          (noise, noise_variants(0.05)[0], "I-MG - Policy"),
                                          (noise, noise_variants(0.05)[1], "I-MG")):
        key = plan.train_keys[(variant, "nut_insertion")]
        assert key == table1.train_keys[(table1_variant, "nut_insertion")]
        assert plan.steps[key].kwargs == table1.steps[key].kwargs
        assert plan.eval_keys[(variant, "Nut Insertion")] == table1.eval_keys[(table1_variant, "Nut Insertion")]
    # other seeds and the low noise train on their own
    assert seeds.train_keys[(seed_variant(2), "nut_insertion")] != seeds.train_keys[(seed_variant(1), "nut_insertion")]
    assert noise.train_keys[(noise_variants(0.005)[1], "nut_insertion")] != table1.train_keys[("I-MG", "nut_insertion")]
    # at demo scale the scaling curve's middle size is the I-MG row's dataset size
    assert scaling.train_keys[("I-MG (200)", "two_piece_assembly")].endswith("/train/i_mg")
    assert not scaling.train_keys[("I-MG (40)", "two_piece_assembly")].endswith("/train/i_mg")


def _fake_finished(plan, key: str, current: dict[str, str]) -> None:
    """Mark ``key`` of ``plan`` finished (and the steps it reads, where not yet in ``current``: step key ->
    run id), with a stand-in output where its arguments put one."""
    from imgen_ros.policy.experiment import _write_marker

    step = plan.steps[key]
    for dep in step.deps:
        if dep not in current:
            _fake_finished(plan, dep, current)
    if "out" in step.kwargs:
        Path(step.kwargs["out"]).parent.mkdir(parents=True, exist_ok=True)
        Path(step.kwargs["out"]).write_text(f"data of {key}")
    if "out_dir" in step.kwargs:
        (Path(step.kwargs["out_dir"]) / "models").mkdir(parents=True, exist_ok=True)
        (Path(step.kwargs["out_dir"]) / "models" / "best.pth").write_text(f"weights of {key}")
    result = {"best_checkpoint": step.kwargs.get("out_dir", "") + "/models/best.pth"}
    current[key] = _write_marker(plan, key, result, current)


def test_reuse_takes_over_the_same_steps_of_another_experiment(tmp_path: Path) -> None:
    from imgen_ros.policy.experiment import _marker, adopt_steps, load_marker

    table1 = build_plan("table1", "demo", tmp_path / "table1")
    done: dict[str, str] = {}
    shared = ["nut_insertion/data/src_demos", "nut_insertion/data/base_data", "nut_insertion/train/base",
              "nut_insertion/data/imgen_nearest_200"]
    for key in [*shared, "coffee/data/base_data"]:
        _fake_finished(table1, key, done)
    # a step whose output was deleted is not taken over, nor what was made from it (I-MG's data),
    # nor a step recorded with other arguments (the base data's twin with another n)
    _fake_finished(table1, "nut_insertion/data/imgen_200", done)
    Path(table1.steps["nut_insertion/data/interventions_10"].kwargs["out"]).unlink()
    shared.remove("nut_insertion/data/imgen_nearest_200")
    other = _marker(table1.out, "nut_insertion/data/imgen_nearest_200")
    other.write_text(other.read_text().replace('"n": 200', '"n": 300'))

    seeds = build_plan("seeds", "demo", tmp_path / "seeds")
    assert sorted(adopt_steps(seeds, table1.out)) == sorted(shared)
    current: dict[str, str] = {}
    for key in seeds.in_order():
        record = load_marker(seeds, key, current)
        assert (record is not None) == (key in shared), key
        if record is not None:
            current[key] = record["run"]
    base = seeds.steps["nut_insertion/train/base"].kwargs["out_dir"]
    assert base.startswith(str(seeds.out)) and (Path(base) / "models" / "best.pth").read_text() == \
        "weights of nut_insertion/train/base"
    record = json.loads(_marker(seeds.out, "nut_insertion/train/base").read_text())
    assert record["result"]["best_checkpoint"] == base + "/models/best.pth"  # paths moved to the new run
    assert str(table1.out) not in _marker(seeds.out, "nut_insertion/data/base_data").read_text()
    assert not (seeds.out / "coffee").exists()  # only steps of this plan
    # the earlier run is left as it was, also when a rerun in the new directory rewrites a checkpoint in place
    with (Path(base) / "models" / "best.pth").open("w") as f:
        f.write("retrained")
    assert (Path(table1.steps["nut_insertion/train/base"].kwargs["out_dir"]) / "models" / "best.pth").read_text() \
        == "weights of nut_insertion/train/base"
    assert Path(table1.steps["nut_insertion/data/base_data"].kwargs["out"]).read_text() == \
        "data of nut_insertion/data/base_data"
    assert adopt_steps(seeds, table1.out) == []  # already there: nothing more to take over
    with pytest.raises(ValueError, match="not an imgen experiment"):
        adopt_steps(seeds, tmp_path)


def _current(plan) -> list[str]:
    """The steps of ``plan`` that ``run_plan`` would reuse, in order."""
    from imgen_ros.policy.experiment import load_marker

    current: dict[str, str] = {}
    for key in plan.in_order():
        record = load_marker(plan, key, current)
        if record is not None:
            current[key] = record["run"]
    return list(current)


def test_a_step_after_a_rerun_step_reruns_too(tmp_path: Path) -> None:
    plan = build_plan("block_grasp", "smoke", tmp_path / "run")
    done: dict[str, str] = {}
    for key in plan.steps:
        if key not in done:
            _fake_finished(plan, key, done)
    assert _current(plan) == plan.in_order()
    # the source demos ran again (their marker was lost; same arguments): everything made from them is stale
    from imgen_ros.policy.experiment import _marker, _write_marker

    _marker(plan.out, "block_grasp/data/src_demos").unlink()
    _write_marker(plan, "block_grasp/data/src_demos", {}, {})
    stale = {"block_grasp/data/base_data", "block_grasp/train/base"}
    current = _current(plan)
    assert "block_grasp/data/src_demos" in current and not stale & set(current)
    assert "block_grasp/data/test_demos" in current and "block_grasp/train/mg_demo" in current  # not made from them
    # a marker written before lineages were recorded is not current: the step reruns
    record = json.loads(_marker(plan.out, "block_grasp/data/test_demos").read_text())
    del record["lineage"]
    _marker(plan.out, "block_grasp/data/test_demos").write_text(json.dumps(record))
    assert not {"block_grasp/data/test_demos", "block_grasp/train/mg_demo"} & set(_current(plan))
    # a missing output makes its step stale
    Path(plan.steps["block_grasp/data/imgen_np_6"].kwargs["out"]).unlink()
    assert "block_grasp/data/imgen_np_6" not in _current(plan)


def test_a_step_record_that_is_no_file_is_refused_by_name(tmp_path: Path) -> None:
    from imgen_ros.policy.experiment import _marker, adopt_steps, run_plan

    plan = build_plan("block_grasp", "smoke", tmp_path / "run")
    _marker(plan.out, "block_grasp/train/base").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"block_grasp__train__base\.json: a step record must be a file"):
        run_plan(plan, progress=lambda _: None)
    (tmp_path / "earlier" / "steps").mkdir(parents=True)
    with pytest.raises(ValueError, match="a step record must be a file"):
        adopt_steps(plan, tmp_path / "earlier")


def test_reuse_across_humans_takes_over_nothing_made_from_the_other_humans_data(tmp_path: Path) -> None:
    from imgen_ros.policy.experiment import adopt_steps

    operator = build_plan("block_grasp", "smoke", tmp_path / "operator", human="operator")
    done: dict[str, str] = {}
    for key in operator.steps:
        if key not in done:
            _fake_finished(operator, key, done)
    oracle = build_plan("block_grasp", "smoke", tmp_path / "oracle", human="oracle")
    assert adopt_steps(oracle, operator.out) == []


def test_a_changed_task_definition_changes_the_lineage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgen_ros.sim import task_digest as digest_module
    from imgen_ros.sim.tasks.nut_insertion import NutInsertion

    plan = build_plan("seeds", "smoke", tmp_path / "run")
    key = "nut_insertion/train/i_mg"
    before = (plan.lineage("nut_insertion/data/src_demos"), plan.lineage(key))
    # the lineage does not depend on where the run lies, so --reuse can compare it
    assert build_plan("seeds", "smoke", tmp_path / "elsewhere").lineage(key) == before[1]
    digest_module.task_digest.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(NutInsertion, "hole_half", NutInsertion.hole_half + 0.00425)  # robosuite's fit
            after = build_plan("seeds", "smoke", tmp_path / "run")
            assert after.lineage("nut_insertion/data/src_demos") != before[0] and after.lineage(key) != before[1]
    finally:
        digest_module.task_digest.cache_clear()
    assert build_plan("seeds", "smoke", tmp_path / "run").lineage(key) == before[1]


def test_reuse_of_a_folder_that_is_no_experiment_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["experiment", "seeds", "--scale", "smoke", "--out", str(tmp_path / "x"),
                 "--reuse", str(tmp_path)]) == 2
    assert "--reuse" in capsys.readouterr().err and not (tmp_path / "x").exists()


def _finish_all(plan) -> dict[str, str]:
    done: dict[str, str] = {}
    for key in plan.steps:
        if key not in done:
            _fake_finished(plan, key, done)
    return done


def test_a_moved_run_directory_keeps_its_steps_and_can_be_reused_from(tmp_path: Path) -> None:
    from imgen_ros.policy.experiment import adopt_steps

    _finish_all(build_plan("block_grasp", "smoke", tmp_path / "first"))
    (tmp_path / "first").rename(tmp_path / "moved")
    moved = build_plan("block_grasp", "smoke", tmp_path / "moved")
    assert _current(moved) == moved.in_order()  # resumes where it stopped, nothing rerun
    elsewhere = build_plan("block_grasp", "smoke", tmp_path / "elsewhere")
    assert sorted(adopt_steps(elsewhere, tmp_path / "moved")) == sorted(elsewhere.steps)
    base = Path(elsewhere.steps["block_grasp/train/base"].kwargs["out_dir"]) / "models" / "best.pth"
    assert base.read_text() == "weights of block_grasp/train/base"


def test_a_training_folder_without_its_checkpoint_is_not_finished(tmp_path: Path) -> None:
    plan = build_plan("block_grasp", "smoke", tmp_path / "run")
    _finish_all(plan)
    (Path(plan.steps["block_grasp/train/base"].kwargs["out_dir"]) / "models" / "best.pth").unlink()
    current = _current(plan)
    assert "block_grasp/train/base" not in current and "block_grasp/data/interventions_10" not in current
    assert "block_grasp/data/base_data" in current


def test_reuse_replaces_outputs_whole_and_an_interrupted_copy_leaves_no_record(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from imgen_ros.policy import experiment
    from imgen_ros.policy.experiment import _marker, adopt_steps

    _finish_all(build_plan("block_grasp", "smoke", tmp_path / "earlier"))
    here = build_plan("block_grasp", "smoke", tmp_path / "here")
    _finish_all(here)
    base_dir = Path(here.steps["block_grasp/train/base"].kwargs["out_dir"])
    (base_dir / "models" / "epoch_90.pth").write_text("a checkpoint of another run")
    for key in ("block_grasp/data/src_demos", "block_grasp/train/base"):  # stale here: other lineages
        marker = _marker(here.out, key)
        marker.write_text(marker.read_text().replace('"lineage": "', '"lineage": "0'))
    data = Path(here.steps["block_grasp/data/src_demos"].kwargs["out"])
    data.write_text("old data")

    def copy_half(source, target, *args, **kwargs):
        Path(target).write_text("half of it")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(shutil, "copy2", copy_half)
        with pytest.raises(RuntimeError, match=r"cannot copy .*src_demos\.hdf5.*No space left"):
            adopt_steps(here, tmp_path / "earlier")
    assert not _marker(here.out, "block_grasp/data/src_demos").exists()  # nothing to trust after the crash
    assert data.read_text() == "old data"  # and no half copy in its place
    assert "block_grasp/train/base" in adopt_steps(here, tmp_path / "earlier")
    assert data.read_text() == "data of block_grasp/data/src_demos"
    assert sorted(p.name for p in (base_dir / "models").iterdir()) == ["best.pth"]  # replaced, not merged
    assert experiment.load_marker(here, "block_grasp/data/src_demos", {}) is not None


def test_when_a_step_fails_the_steps_already_running_finish_and_are_recorded(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    from imgen_ros.policy import experiment, experiment_jobs

    plan = build_plan("block_grasp", "smoke", tmp_path / "run")
    first = [k for k in plan.in_order() if not plan.steps[k].deps][:2]
    assert len(first) == 2
    started: list[str] = []

    def fake_step(fn: str, kwargs: dict, log_path: str) -> dict:
        key = next(k for k in first if plan.steps[k].kwargs == kwargs)
        started.append(key)
        if key == first[0]:
            raise ValueError("the simulated human fell over")
        time.sleep(0.5)
        Path(kwargs["out"]).parent.mkdir(parents=True, exist_ok=True)
        Path(kwargs["out"]).write_text("demos")
        return {"path": kwargs["out"]}

    monkeypatch.setattr(experiment_jobs, "run_step", fake_step)
    monkeypatch.setattr(experiment, "ProcessPoolExecutor", lambda max_workers, mp_context: ThreadPoolExecutor(2))
    messages: list[str] = []
    with pytest.raises(RuntimeError, match=rf"step {first[0]} failed: ValueError: the simulated human fell over"):
        experiment.run_plan(plan, progress=messages.append, workers=2)
    assert sorted(started) == sorted(first)  # nothing else started after the failure
    assert _current(plan) == [first[1]]  # the other one finished and is kept for the rerun
    assert any("waiting for the 1 running" in m for m in messages)


def test_a_file_where_the_step_records_go_is_refused_by_name(tmp_path: Path) -> None:
    from imgen_ros.policy.experiment import run_plan

    plan = build_plan("block_grasp", "smoke", tmp_path / "run")
    plan.out.mkdir(parents=True)
    (plan.out / "steps").write_text("not a folder")
    with pytest.raises(ValueError, match=r"run/steps: must be the folder of step records"):
        run_plan(plan, progress=lambda _: None)


def test_the_lineage_follows_the_step_functions_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgen_ros.policy import experiment, experiment_jobs

    key, made_from_it = "block_grasp/data/src_demos", "block_grasp/data/base_data"
    plan = build_plan("block_grasp", "smoke", tmp_path / "run")
    before, before_made = plan.lineage(key), plan.lineage(made_from_it)

    def collect_demos(**kwargs):  # the same name, other code
        return experiment_jobs.collect_demos(**kwargs)

    experiment.step_code_digest.cache_clear()
    with monkeypatch.context() as patch:
        patch.setattr(experiment_jobs, "collect_demos", collect_demos)
        plan = build_plan("block_grasp", "smoke", tmp_path / "run")
        assert plan.lineage(key) != before and plan.lineage(made_from_it) != before_made
    experiment.step_code_digest.cache_clear()
    assert build_plan("block_grasp", "smoke", tmp_path / "run").lineage(key) == before
