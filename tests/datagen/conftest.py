"""Source datasets on block_grasp, collected once per test session with the scripted expert."""

from __future__ import annotations

import pytest
from imgen_ros.datagen.collect import CollectConfig, collect


@pytest.fixture(scope="session")
def source_interventions(tmp_path_factory):
    """10 human-gated interventions: naive expert under corruption, simulated human takes over."""
    path = tmp_path_factory.mktemp("sources") / "interventions.hdf5"
    collect(CollectConfig(task="block_grasp", kind="interventions", episodes=10, seed=0), path)
    return path


@pytest.fixture(scope="session")
def source_demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("sources") / "demos.hdf5"
    collect(CollectConfig(task="block_grasp", kind="demos", episodes=5, seed=0), path)
    return path
