"""What the real launch does when a process it cannot run without exits (ROS-free: the launch file
passes ``launch.actions.Shutdown`` in, so this is testable without ``launch`` installed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class RequiredProcessError(RuntimeError):
    """A required process of the launch exited with a non-zero code while the launch was running."""


def end_launch_on_exit(name: str, shutdown: Callable[..., Any]) -> Callable[[Any, Any], list[Any]]:
    """An ``on_exit`` callable for the required process ``name``.

    A clean exit (code 0), or any exit once the launch is already stopping (Ctrl-C), ends the launch
    with ``shutdown(reason=...)`` as ``on_exit=Shutdown()`` did. A failure (a non-zero code, or a signal,
    while the launch runs) raises instead: ``launch`` then logs "Caught exception in launch ...: <name>
    exited with code N", shuts the launch down, and ``ros2 launch`` exits 1, so a supervisor or a
    script sees that the robot stack failed (with ``Shutdown()`` alone it exits 0)."""

    def on_exit(event: Any, context: Any) -> list[Any]:
        code = event.returncode
        if code == 0 or context.is_shutdown:
            return [shutdown(reason=f"{name} exited")]
        raise RequiredProcessError(f"{name} exited with code {code}; the launch stops")

    return on_exit
