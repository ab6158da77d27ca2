"""TargetChain: streamed deltas chain on the last target while the arm keeps up, never beyond the lead bound."""

from __future__ import annotations

import numpy as np
import pytest
from imgen_ros.core.pose import axisangle_to_matrix, make_pose
from imgen_ros.robot.interface import TargetChain


@pytest.fixture
def chain() -> TargetChain:
    return TargetChain(True, max_lead_m=0.02, max_lead_rad=0.2, stream_timeout_s=0.15)


def test_chains_while_streaming_and_keeping_up(chain):
    measured = make_pose([0.5, 0.0, 0.3])
    assert chain.reference(measured, 0.0) is measured  # nothing committed yet
    target = make_pose([0.51, 0.0, 0.3])
    chain.commit(target, 0.0)
    lagging = make_pose([0.505, 0.0, 0.3])
    assert chain.reference(lagging, 0.05) is target


@pytest.mark.parametrize(("measured", "now"), [
    (make_pose([0.5, 0.0, 0.3]), 0.2),                                  # a pause in the stream
    (make_pose([0.48, 0.0, 0.3]), 0.05),                                # held back: 3 cm behind
    (make_pose([0.51, 0.0, 0.3], axisangle_to_matrix([0, 0, 0.3])), 0.05),  # 0.3 rad behind
])
def test_falls_back_to_the_measured_pose(chain, measured, now):
    chain.commit(make_pose([0.51, 0.0, 0.3]), 0.0)
    assert chain.reference(measured, now) is measured


def test_disabled_or_reset_uses_the_measured_pose(chain):
    chain.commit(make_pose([0.51, 0.0, 0.3]), 0.0)
    chain.reset()
    measured = make_pose([0.5, 0.0, 0.3])
    assert chain.reference(measured, 0.01) is measured
    off = TargetChain(False, 0.02, 0.2, 0.15)
    off.commit(make_pose([0.51, 0.0, 0.3]), 0.0)
    assert off.reference(measured, 0.01) is measured
    with pytest.raises(ValueError, match="must be > 0"):
        TargetChain(True, 0.0, 0.2, 0.15)
    assert np.allclose(measured, make_pose([0.5, 0.0, 0.3]))
