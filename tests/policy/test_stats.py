"""Wilson score interval."""

from __future__ import annotations

import pytest
from imgen_ros.policy.stats import wilson_interval


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 50, 0.0, 0.0713),      # upper = z^2 / (n + z^2)
    (50, 50, 0.9287, 1.0),
    (25, 50, 0.3664, 0.6336),
    (43, 50, 0.7381, 0.9305),
    (1, 10, 0.0179, 0.4042),
])
def test_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=2e-4)
    assert hi == pytest.approx(high, abs=2e-4)


def test_interval_contains_estimate_and_shrinks_with_n() -> None:
    lo10, hi10 = wilson_interval(8, 10)
    lo100, hi100 = wilson_interval(80, 100)
    assert lo10 < 0.8 < hi10 and lo100 < 0.8 < hi100
    assert hi100 - lo100 < hi10 - lo10


@pytest.mark.parametrize(("k", "n"), [(1, 0), (-1, 5), (6, 5)])
def test_rejects_bad_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(k, n)
