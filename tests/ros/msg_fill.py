"""Fill any ROS 2 message with distinct, non-default values (for round-trip tests)."""

from __future__ import annotations

import importlib
import re
from typing import Any

_INT_TYPES = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "octet", "byte", "char"}
_FLOAT_TYPES = {"double", "float", "float64", "float32"}


def _message_class(type_name: str) -> type:
    package, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _value(type_name: str, counter: list[int]) -> Any:
    counter[0] += 1
    k = counter[0]
    if type_name in _INT_TYPES:
        return k % 100 + 1
    if type_name in _FLOAT_TYPES:
        return k + 0.25
    if type_name == "boolean":
        return k % 2 == 1
    if type_name in ("string", "wstring"):
        return f"value_{k}"
    return fill_message(_message_class(type_name)(), counter)


def fill_message(msg: Any, counter: list[int] | None = None) -> Any:
    """Set every field of ``msg`` (recursively) to a distinct non-default value and return it."""
    counter = counter if counter is not None else [0]
    for field, type_name in msg.get_fields_and_field_types().items():
        array = re.fullmatch(r"(.+?)\[(\d*)\]|sequence<(.+?)(?:, \d+)?>", type_name)
        if array:
            base = array.group(1) or array.group(3)
            size = int(array.group(2)) if array.group(2) else 2
            value = [_value(base, counter) for _ in range(size)]
        else:
            value = _value(type_name, counter)
        if field == "stamp" or type_name == "builtin_interfaces/Time":
            pass
        setattr(msg, field, value)
    if hasattr(msg, "orientation") and hasattr(msg.orientation, "w"):
        msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = 0.0, 0.6, 0.0, 0.8
    return msg


def message_types() -> dict[str, type]:
    """Every imgen_msgs message type, including service request/response and action parts."""
    import imgen_msgs.action as actions
    import imgen_msgs.msg as msgs
    import imgen_msgs.srv as srvs

    types: dict[str, type] = {}
    for name in ("DeltaPoseCommand", "ControlState", "ObjectPoseEstimate", "EpisodeEvent", "LoopTiming"):
        types[name] = getattr(msgs, name)
    for name in ("StartEpisode", "StopEpisode", "SetControlMode"):
        srv = getattr(srvs, name)
        types[f"{name}_Request"] = srv.Request
        types[f"{name}_Response"] = srv.Response
    action = actions.GenerateInterventions
    types["GenerateInterventions_Goal"] = action.Goal
    types["GenerateInterventions_Result"] = action.Result
    types["GenerateInterventions_Feedback"] = action.Feedback
    return types
