"""Fixtures for the driver tests: franky-sim in the private network namespace."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from franky_sim_server import running_franky_sim


@pytest.fixture(scope="module")
def franky_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_franky_sim(tmp_path_factory.mktemp("franky_sim") / "franky-sim.log") as address:
        yield address
