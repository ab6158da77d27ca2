"""Terminal key decoding of keyboard_teleop (arrows, letters, specials)."""

from __future__ import annotations

from imgen_ros.nodes.keyboard_teleop import decode_keys


def test_decode_letters_arrows_and_specials():
    assert decode_keys(b"wA\x1b[A\x1b[D \t+-=q") == ["w", "a", "up", "left", "space", "tab", "+", "-", "+", "q"]


def test_unknown_bytes_are_skipped():
    assert decode_keys(b"\x1b[Z\x00s") == ["z", "s"]
