"""Fixtures: the D415 test scene (d415_scene.py) with and without the depth noise model."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from d415_scene import D415Scene, build_scene


@pytest.fixture
def noisy_scene() -> Iterator[D415Scene]:
    scene = build_scene(noise=True)
    yield scene
    scene.camera.close()


@pytest.fixture
def ideal_scene() -> Iterator[D415Scene]:
    scene = build_scene(noise=False)
    yield scene
    scene.camera.close()
