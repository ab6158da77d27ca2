"""keyboard_teleop: the terminal keyboard as teleop (layout: teleop.keyboard; tab = takeover
toggle, space = gripper toggle, w/s a/d q/e translate, arrows/z/x rotate).

Reads key presses from the node's terminal (raw mode; run it in its own terminal, e.g. the launch
file's ``prefix='xterm -e'``). Terminals report presses only, so each press holds its key for
``tap_hold_s`` (auto-repeat keeps a held key moving). Without a terminal (stdin not a TTY) or when
stdin closes, the device is dead: the node publishes nothing and the arbiter holds.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import time
import tty

from imgen_ros.nodes._ros import declare_config, run
from imgen_ros.nodes._teleop import TeleopNode
from imgen_ros.teleop.keyboard import KeyboardConfig, KeyboardDevice

ESCAPES = {b"\x1b[A": "up", b"\x1b[B": "down", b"\x1b[C": "right", b"\x1b[D": "left"}
SPECIAL = {b" ": "space", b"\t": "tab", b"+": "+", b"-": "-", b"=": "+"}


def decode_keys(data: bytes) -> list[str]:
    """Key names in a chunk of terminal input (arrow escape sequences, letters, digits, specials)."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        seq = data[i:i + 3]
        if seq in ESCAPES:
            keys.append(ESCAPES[seq])
            i += 3
            continue
        ch = data[i:i + 1]
        if ch in SPECIAL:
            keys.append(SPECIAL[ch])
        elif ch.isalnum():
            keys.append(ch.decode().lower())
        i += 1
    return keys


class KeyboardTeleop(TeleopNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("keyboard_teleop", KeyboardDevice(), **kwargs)
        self.config = declare_config(self, KeyboardConfig, {})
        self.device = KeyboardDevice(self.config)
        self.fd = sys.stdin.fileno()
        self.saved = None
        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
            self.get_logger().info("keyboard teleop: tab = take over, space = gripper, w/s a/d q/e move")
        else:
            self.alive = False
            self.get_logger().error("stdin is not a terminal: keyboard teleop is dead (run it in a terminal)")

    def poll(self) -> None:
        if not self.alive:
            return
        while select.select([self.fd], [], [], 0.0)[0]:
            data = os.read(self.fd, 64)
            if not data:
                self.alive = False
                self.get_logger().error("stdin closed: keyboard teleop is dead")
                return
            for key in decode_keys(data):
                self.device.key_tap(key, time.monotonic())

    def close(self) -> None:
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        super().close()


def main(args: list[str] | None = None) -> None:
    run(KeyboardTeleop, args)


if __name__ == "__main__":
    main()
