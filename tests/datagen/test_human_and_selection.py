"""Which simulated human records the sources, and where the source-selection default is decided."""

from __future__ import annotations

import json

import numpy as np
import pytest
from imgen_ros.cli.main import main
from imgen_ros.data import ACTION_MODE_HUMAN, DatasetReader
from imgen_ros.datagen.collect import CollectConfig, collect
from imgen_ros.datagen.episodes import DEFAULT_SELECTION, GenerationParams, generate_imgen
from imgen_ros.datagen.job import GenerationJob, attempt_seed, context_for
from imgen_ros.policy.experiment import EXPERIMENT_NAMES, build_plan
from imgen_ros.policy.experiment_spec import NEAREST_VARIANT


def _takeovers(path) -> list[int]:
    with DatasetReader(path) as r:
        return [int(np.argmax(r.action_modes(d) == ACTION_MODE_HUMAN)) for d in r.demos()]


def test_interventions_by_operator_and_oracle_differ_and_say_who(tmp_path):
    paths = {}
    for human in ("operator", "oracle"):
        paths[human] = tmp_path / f"{human}.hdf5"
        collect(CollectConfig(task="block_grasp", kind="interventions", episodes=3, seed=0, human=human),
                paths[human])
        with DatasetReader(paths[human]) as r:
            assert {r.demo_attrs(d)["human"] for d in r.demos()} == {human}
            assert r.json_attr("imgen_config")["human"] == human
    # same scenes (seeds), other take-over steps: the operator reacts to what it sees, after a delay
    assert all(p != o for p, o in zip(_takeovers(paths["operator"]), _takeovers(paths["oracle"]), strict=True))
    assert CollectConfig(task="block_grasp", kind="demos").human == "operator"
    with pytest.raises(ValueError, match="unknown human model"):
        CollectConfig(task="block_grasp", kind="demos", human="robot")


def test_collect_cli_takes_the_human_model(tmp_path, capsys):
    out = tmp_path / "demos.hdf5"
    assert main(["collect", "demos", "--task", "block_grasp", "--episodes", "1", "--human", "oracle",
                 "--out", str(out), "--quiet"]) == 0
    with DatasetReader(out) as r:
        assert r.demo_attrs(r.demos()[0])["human"] == "oracle"
    with pytest.raises(SystemExit):
        main(["collect", "demos", "--task", "block_grasp", "--human", "robot", "--out", str(tmp_path / "x.hdf5")])
    assert "--human" in capsys.readouterr().err


def test_selection_default_is_resolved_by_the_job_kind():
    assert DEFAULT_SELECTION == {"mimicgen": "random", "imgen": "random"}  # the paper's, for both kinds
    for kind, expected in DEFAULT_SELECTION.items():
        job = GenerationJob(kind=kind, task="block_grasp", source="/x.hdf5", policy="expert")
        assert job.params.selection == expected  # recorded explicitly (journal, file config)
        assert GenerationJob.from_dict(job.to_dict()) == job
        explicit = GenerationJob(kind=kind, task="block_grasp", source="/x.hdf5", policy="expert",
                                 params=GenerationParams(selection="random" if expected == "nearest" else "nearest"))
        assert explicit.params.selection != expected
    assert GenerationParams().selection is None and GenerationParams().selection_for("imgen") == "random"
    assert GenerationParams(selection="nearest").selection_for("imgen") == "nearest"
    with pytest.raises(ValueError, match="unknown generation kind"):
        GenerationParams().selection_for("dagger")


def test_generate_imgen_without_a_selection_uses_the_library_default(source_interventions):
    """Called directly with default params (selection None), an I-MG attempt chooses as 'random' does."""
    job = GenerationJob(kind="imgen", task="block_grasp", source=str(source_interventions), policy="expert", seed=4)
    ctx = context_for(job)
    for attempt in range(3):
        seed = attempt_seed(job.seed, attempt)
        a = generate_imgen(ctx.env, ctx.policy, ctx.pool, attempt, seed, GenerationParams())
        b = generate_imgen(ctx.env, ctx.policy, ctx.pool, attempt, seed, GenerationParams(selection="random"))
        assert a.outcome == b.outcome
        if a.episode is not None:
            assert a.episode.attrs["source_demos"] == b.episode.attrs["source_demos"]
            np.testing.assert_array_equal(a.episode.actions, b.episode.actions)


def test_generate_cli_records_the_resolved_selection(source_demos, tmp_path):
    out = tmp_path / "mg.hdf5"
    assert main(["generate", "mimicgen", "--task", "block_grasp", "--source", str(source_demos), "--n", "1",
                 "--out", str(out), "--quiet"]) == 0
    with DatasetReader(out) as r:
        assert r.json_attr("imgen_config")["job"]["params"]["selection"] == "random"


@pytest.mark.parametrize("name", EXPERIMENT_NAMES)
def test_every_experiment_reports_random_and_nearest_i_mg_side_by_side(name, tmp_path):
    plan = build_plan(name, "smoke", tmp_path)
    variants = plan.experiment.variants
    random_rows = [v for v in variants if "I-MG" in v and "nearest" not in v and "Policy" not in v]
    nearest_rows = [v for v in variants if "nearest" in v]
    assert random_rows and len(random_rows) == len(nearest_rows)
    for r, n in zip(random_rows, nearest_rows, strict=True):
        assert variants.index(n) == variants.index(r) + 1  # side by side
    selections = {}
    for key, step in plan.steps.items():
        if step.fn == "generate" and step.kwargs["kind"] == "imgen" and step.kwargs["policy_execution"]:
            selections[key.split("/data/")[1]] = step.kwargs["selection"]
    assert selections and all(v == ("nearest" if k.startswith("imgen_nearest") else "random")
                              for k, v in selections.items())
    # the paper's numbers stand beside the random rows only
    assert not any(plan.experiment.paper.get(v) for v in nearest_rows)
    if name in ("block_grasp", "table1", "table2", "table3"):
        assert NEAREST_VARIANT in variants


def test_experiment_human_model_reaches_every_collection_step_and_the_identity(tmp_path, capsys):
    default = build_plan("block_grasp", "smoke", tmp_path)
    oracle = build_plan("block_grasp", "smoke", tmp_path, human="oracle")
    collects = [k for k, s in default.steps.items() if s.fn.startswith("collect")]
    assert len(collects) == 3  # source demos, test demos, interventions
    for key in collects:
        assert default.steps[key].kwargs["human"] == "operator" and oracle.steps[key].kwargs["human"] == "oracle"
    for key, step in default.steps.items():  # nothing else depends on the human argument itself
        if key not in collects:
            assert step.kwargs == oracle.steps[key].kwargs
    with pytest.raises(ValueError, match="unknown human model"):
        build_plan("block_grasp", "smoke", tmp_path, human="robot")
    from imgen_ros.cli.experiment import IDENTITY, prepare_out

    out = tmp_path / "exp"
    out.mkdir()
    (out / IDENTITY).write_text(json.dumps({"experiment": "block_grasp", "scale": "smoke", "seed": 0}))
    (out / "steps").mkdir()  # recorded before --human existed: made by the oracle
    ident = {"experiment": "block_grasp", "scale": "smoke", "seed": 0}
    assert prepare_out(out, {**ident, "human": "oracle"}, overwrite=False) is None
    assert main(["experiment", "block_grasp", "--scale", "smoke", "--out", str(out)]) == 2
    assert "holds another experiment" in capsys.readouterr().err
