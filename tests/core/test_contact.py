"""The contact detector (core.contact): thresholds, debounce, hysteresis, force baseline, table gate,
grasp cue, NaN inputs, batch = sample-by-sample, and the reveal logic the contact_detector node runs;
its parameter file."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from imgen_ros.core.contact import (
    STATE_SIZE,
    ContactDetector,
    ContactDetectorConfig,
    ContactReveal,
    ContactSample,
)
from imgen_ros.core.params import BUILTIN_PARAMETERS, check_sections, load_config, param_table, read_sections

CONFIG = Path(__file__).resolve().parents[2] / "config" / "contact_detector.yaml"
DT = 0.01
ABOVE = 0.06   # TCP height of a finger resting on the 5 cm cube
OPEN = 0.08


def _feed(detector: ContactDetector, forces, tcp_z=ABOVE, widths=OPEN, bias=(0.0, 0.0, 0.0), t0=0.0) -> list[bool]:
    """Feed one sample per force vector (N, libfranka sign); returns ``detected`` after each."""
    forces = np.atleast_2d(np.asarray(forces, dtype=float))
    n = len(forces)
    tcp_z = np.broadcast_to(np.asarray(tcp_z, dtype=float), (n,))
    widths = np.broadcast_to(np.asarray(widths, dtype=float), (n,))
    out = []
    for i in range(n):
        wrench = np.concatenate([forces[i] + np.asarray(bias), np.zeros(3)])
        out.append(detector.update(ContactSample(t0 + DT * (i + 1), wrench, float(tcp_z[i]), float(widths[i]))))
    return out


def _free(n: int) -> np.ndarray:
    return np.zeros((n, 3))


def _press(newtons: float, n: int) -> np.ndarray:
    """A finger pressing down with ``newtons``: the robot pushes the world down (f_z < 0)."""
    return np.tile([0.0, 0.0, -newtons], (n, 1))


def test_force_above_the_threshold_is_contact_below_is_not():
    cfg = ContactDetectorConfig()
    below = ContactDetector(cfg)
    assert not any(_feed(below, np.vstack([_free(5), _press(cfg.force_enter_n - 0.5, 50)])))
    above = ContactDetector(cfg)
    flags = _feed(above, np.vstack([_free(5), _press(cfg.force_enter_n + 0.5, 5)]))
    assert flags.index(True) == 5 + cfg.debounce_samples - 1
    assert above.cue == "force" and above.detected_stamp_s == pytest.approx(DT * (5 + cfg.debounce_samples))
    lateral = ContactDetector(cfg)   # the magnitude counts: a sideways push is a contact too
    assert any(_feed(lateral, np.vstack([_free(5), np.tile([0.0, 12.0, 0.0], (3, 1))])))


def test_a_single_spike_is_debounced():
    detector = ContactDetector(ContactDetectorConfig(debounce_samples=2))
    spikes = np.vstack([_free(5)] + [np.vstack([_press(40.0, 1), _free(3)]) for _ in range(10)])
    assert not any(_feed(detector, spikes))
    assert _feed(detector, _press(40.0, 2), t0=1.0)[-1]


def test_hysteresis_keeps_the_cue_on_between_exit_and_enter():
    cfg = ContactDetectorConfig(force_enter_n=10.0, force_exit_n=5.0, debounce_samples=3)
    held = ContactDetector(cfg)   # 12 N, then 7 N (below enter, above exit): still on, third sample detects
    assert _feed(held, np.vstack([_free(5), _press(12.0, 1), _press(7.0, 2)]))[-1]
    dropped = ContactDetector(cfg)   # 12 N, then 4 N (below exit): off, the count starts again
    assert not any(_feed(dropped, np.vstack([_free(5), _press(12.0, 2), _press(4.0, 1), _press(12.0, 2),
                                             _press(7.0, 0)])))
    never_on = ContactDetector(cfg)   # 7 N from the start never enters
    assert not any(_feed(never_on, np.vstack([_free(5), _press(7.0, 20)])))


def test_the_baseline_removes_the_estimate_bias():
    bias = (4.0, -4.0, 9.0)   # N: the estimate at rest (|b| = 10.6 N, above the threshold on its own)
    cfg = ContactDetectorConfig()
    zeroed = ContactDetector(cfg)
    assert not any(_feed(zeroed, np.vstack([_free(5), _press(3.0, 20)]), bias=bias))
    np.testing.assert_allclose(zeroed.baseline, bias)
    assert _feed(zeroed, _press(12.0, 2), bias=bias, t0=1.0)[-1]
    raw = ContactDetector(replace(cfg, baseline_samples=0))   # without zeroing the bias alone is "contact"
    assert raw.baseline is not None and not raw.baseline.any()
    assert any(_feed(raw, np.vstack([_free(5), _press(3.0, 20)]), bias=bias))
    # no detection while the baseline is being taken, whatever the force
    taking = ContactDetector(cfg)
    assert not any(_feed(taking, _press(50.0, cfg.baseline_samples)))


def test_unknown_inputs_never_detect():
    cfg = ContactDetectorConfig()
    nan = np.full((30, 3), np.nan)
    unknown = ContactDetector(cfg)
    assert not any(_feed(unknown, nan)) and unknown.baseline is None   # NaN never enters the baseline
    partly = ContactDetector(cfg)
    forces = np.vstack([_free(5), _press(30.0, 1), nan[:1], _press(30.0, 1), nan[:1]])
    assert not any(_feed(partly, forces))   # a NaN sample breaks the debounce streak
    no_height = ContactDetector(cfg)
    assert not any(_feed(no_height, np.vstack([_free(5), _press(30.0, 10)]), tcp_z=np.nan))
    no_width = ContactDetector(cfg)
    assert not any(_feed(no_width, _free(30), widths=np.nan))


def test_a_table_touch_is_not_an_object_contact():
    cfg = ContactDetectorConfig(table_z_m=0.0, min_tcp_height_m=0.03)
    table = ContactDetector(cfg)   # the hand on the table: TCP ~1 cm up, pressing hard
    assert not any(_feed(table, np.vstack([_free(5), _press(80.0, 20)]), tcp_z=0.01))
    raised_table = ContactDetector(replace(cfg, table_z_m=0.05))   # the same press on a table 5 cm higher
    assert not any(_feed(raised_table, np.vstack([_free(5), _press(80.0, 20)]), tcp_z=0.06))
    cube = ContactDetector(cfg)
    assert any(_feed(cube, np.vstack([_free(5), _press(80.0, 20)]), tcp_z=0.06))


def test_fingers_stopping_on_an_object_are_a_contact():
    cfg = ContactDetectorConfig()
    closing_on_cube = np.concatenate([np.full(5, OPEN), np.linspace(OPEN, 0.05, 6)[1:], np.full(5, 0.05)])
    grasp = ContactDetector(cfg)
    flags = _feed(grasp, _free(len(closing_on_cube)), widths=closing_on_cube)
    first_still = 10   # index of the second 0.05 m sample: the first with zero width speed
    assert flags.index(True) == first_still + cfg.debounce_samples - 1 and grasp.cue == "grasp"
    closing_on_nothing = np.concatenate([np.full(5, OPEN), np.linspace(OPEN, 0.0, 9)[1:], np.full(10, 0.0)])
    assert not any(_feed(ContactDetector(cfg), _free(len(closing_on_nothing)), widths=closing_on_nothing))
    assert not any(_feed(ContactDetector(cfg), _free(40), widths=OPEN))
    assert not any(_feed(ContactDetector(replace(cfg, use_grasp=False)), _free(len(closing_on_cube)),
                         widths=closing_on_cube))


def test_detection_latches_until_reset():
    detector = ContactDetector()
    assert _feed(detector, np.vstack([_free(5), _press(30.0, 2)]))[-1]
    assert all(_feed(detector, _free(20), t0=1.0))
    detector.reset()
    assert not detector.detected and detector.cue == "" and math.isnan(detector.detected_stamp_s)
    assert not any(_feed(detector, _free(20), t0=2.0))


def _random_stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    stamps = np.arange(1, n + 1) * DT
    wrench = rng.normal(0.0, 1.0, (n, 6))
    for start in rng.integers(10, n - 10, 6):   # presses and grazes of a few samples
        wrench[start:start + rng.integers(1, 5), 2] -= rng.uniform(3.0, 40.0)
    wrench[rng.integers(0, n, 4)] = np.nan
    tcp_z = rng.choice([0.01, 0.06, 0.2], n)
    widths = np.where(rng.random(n) < 0.9, OPEN, rng.choice([0.05, 0.0, np.nan], n))
    return stamps, wrench, tcp_z, widths


@pytest.mark.parametrize("seed", range(6))
def test_batches_give_the_sample_by_sample_result(seed):
    rng = np.random.default_rng(seed)
    stamps, wrench, tcp_z, widths = _random_stream(rng, 300)
    one, batched = ContactDetector(), ContactDetector()
    for i in range(300):
        one.update(ContactSample(stamps[i], wrench[i], tcp_z[i], widths[i]))
    for start in range(0, 300, 5):
        sl = slice(start, start + 5)
        batched.update_batch(stamps[sl], wrench[sl], tcp_z[sl], widths[sl])
    assert one.detected == batched.detected and one.cue == batched.cue
    np.testing.assert_array_equal(one.state_array(), batched.state_array())


def test_state_array_restores_the_detector():
    rng = np.random.default_rng(3)
    stamps, wrench, tcp_z, widths = _random_stream(rng, 120)
    a = ContactDetector()
    a.update_batch(stamps[:60], wrench[:60], tcp_z[:60], widths[:60])
    state = a.state_array()
    assert state.shape == (STATE_SIZE,)
    b = ContactDetector()
    b.load_state_array(state)
    for d in (a, b):
        d.update_batch(stamps[60:], wrench[60:], tcp_z[60:], widths[60:])
    np.testing.assert_array_equal(a.state_array(), b.state_array())
    with pytest.raises(ValueError, match="shape"):
        b.load_state_array(state[:-1])


@pytest.mark.parametrize("kwargs, word", [({"force_exit_n": 12.0}, "force_exit_n"),
                                          ({"debounce_samples": 0}, "debounce"),
                                          ({"grasp_min_width_m": 0.08}, "grasp_min_width_m"),
                                          ({"force_enter_n": -1.0}, "force_enter_n"),
                                          ({"baseline_samples": -1}, "baseline_samples")])
def test_bad_thresholds_are_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ContactDetectorConfig(**kwargs)


# ---------------------------------------------------------------- the node's logic
def _sample(t: float, force_z: float = 0.0, tcp_z: float = ABOVE) -> ContactSample:
    return ContactSample(t, np.array([0.0, 0.0, force_z, 0.0, 0.0, 0.0]), tcp_z, OPEN)


def _touch(channel: ContactReveal, t0: float = 0.0, tcp=(0.5, 0.0, ABOVE)) -> bool:
    opened = False
    for i in range(5):
        opened |= channel.on_state(_sample(t0 + DT * i), tcp)
    for i in range(5, 8):
        opened |= channel.on_state(_sample(t0 + DT * i, -30.0), tcp)
    return opened


def test_reveal_full_shows_the_estimate_at_contact_and_freezes_it():
    channel = ContactReveal(observability="full")
    assert not _touch(channel) and channel.revealed is None   # no episode yet
    channel.start_episode()
    channel.on_estimate([0.5, 0.02, 0.025], [0.0, 0.0, 0.0, 1.0])
    channel.on_estimate([np.nan, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])   # ignored: NaN
    channel.on_estimate([9.0, 9.0, 9.0], [0.0, 0.0, 0.0, 1.0], valid=False)   # ignored: invalid
    assert _touch(channel, 1.0)
    np.testing.assert_allclose(channel.revealed[0], [0.5, 0.02, 0.025])
    channel.on_estimate([0.6, 0.0, 0.025], [0.0, 0.0, 0.0, 1.0])   # later estimates do not move it
    np.testing.assert_allclose(channel.revealed[0], [0.5, 0.02, 0.025])
    channel.end_episode()
    assert channel.revealed is not None   # kept until the next START
    channel.start_episode()
    assert channel.revealed is None and not channel.detector.detected


def test_reveal_full_waits_for_an_estimate_after_a_blind_contact():
    channel = ContactReveal(observability="full")
    channel.start_episode()
    assert not _touch(channel) and channel.revealed is None
    assert channel.on_estimate([0.55, -0.01, 0.025], [0.0, 0.0, 0.3826834, 0.9238795])
    np.testing.assert_allclose(channel.revealed[1], [0.0, 0.0, 0.3826834, 0.9238795])


def test_reveal_partial_shows_the_tcp_and_none_shows_nothing():
    partial = ContactReveal(observability="partial")
    partial.start_episode()
    assert _touch(partial, tcp=(0.51, 0.03, ABOVE))
    np.testing.assert_allclose(partial.revealed[0], [0.51, 0.03, ABOVE])
    np.testing.assert_allclose(partial.revealed[1], [0.0, 0.0, 0.0, 1.0])
    none = ContactReveal(observability="none")
    none.start_episode()
    none.on_estimate([0.5, 0.0, 0.025], [0.0, 0.0, 0.0, 1.0])
    assert not _touch(none) and none.revealed is None and none.detector.detected
    with pytest.raises(ValueError, match="observability"):
        ContactReveal(observability="some")


def test_contact_detector_parameter_file_builds_in_any_namespace():
    from imgen_ros.nodes.contact_detector import ContactDetectorNodeConfig

    for ns in ("", "/fr3", "/lab/fr3"):
        config = load_config(ContactDetectorNodeConfig, CONFIG, f"{ns}/contact_detector")
        assert config.detector == ContactDetectorConfig()   # the file states the simulator's detector
        declared = set(param_table(ContactDetectorNodeConfig)) | BUILTIN_PARAMETERS
        assert check_sections(read_sections(CONFIG), {f"{ns}/contact_detector": declared}) == []
