"""Typed dataclass configs <-> flat ROS-parameter dictionaries and ``config/*.yaml`` files (ROS-free).

A node's config is a (possibly nested) frozen dataclass. Its fields become ROS parameters with
dotted names (``safety.max_translation_m``); ``config/*.yaml`` files use the ROS 2 parameter file
layout (``<node name or /**>: ros__parameters: {...}``, nested mappings = dotted names), so the
same file serves ``ros2 launch`` (``parameters=[file]``) and Python (``load_config``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _representable(tp: Any) -> bool:
    """Scalars, tuples of scalars and nested dataclasses map to ROS parameters; dicts/lists do not."""
    if _is_dataclass_type(tp) or tp in (bool, int, float, str):
        return True
    return typing.get_origin(tp) is tuple


def _field_types(cls: type) -> dict[str, Any]:
    """init fields that can be parameters (others, e.g. dict key maps, keep their defaults)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and _representable(hints[f.name])}


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def flat_defaults(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted parameter name -> default value (tuples become lists) for every leaf field of ``cls``."""
    out: dict[str, Any] = {}
    instance = cls()
    for name, tp in _field_types(cls).items():
        key = f"{prefix}{name}"
        if _is_dataclass_type(tp):
            out.update(flat_defaults(tp, key + "."))
        else:
            value = getattr(instance, name)
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    bad = ValueError(f"{source}: parameter '{key}' = {value!r} is not a valid {getattr(tp, '__name__', tp)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key, source) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{source}: parameter '{key}' needs {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_coerce(v, a, key, source) for v, a in zip(value, args, strict=True))
    return value


def build_config(cls: type[T], values: Mapping[str, Any], source: str = "parameters", prefix: str = "",
                 extra: Iterable[str] = ()) -> T:
    """Instantiate ``cls`` from dotted ``values`` (missing keys keep defaults; unknown keys raise,
    except the node-level names in ``extra``)."""
    known = set(flat_defaults(cls, prefix)) | set(extra)
    unknown = sorted(k for k in values if k.startswith(prefix) and k not in known)
    if unknown and not prefix:
        raise ValueError(f"{source}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, tp in _field_types(cls).items():
        key = f"{prefix}{name}"
        if _is_dataclass_type(tp):
            kwargs[name] = build_config(tp, values, source, key + ".")
        elif key in values:
            kwargs[name] = _coerce(values[key], tp, key, source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from exc


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_ros_params(path: str | Path, node_name: str) -> dict[str, Any]:
    """Dotted parameters for ``node_name`` from a ROS 2 parameter file (``/**`` entries first)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read parameter file {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of node names to 'ros__parameters'")
    out: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        section = data.get(key)
        if section is None:
            continue
        if not isinstance(section, Mapping) or "ros__parameters" not in section:
            raise ValueError(f"{path}: section '{key}' needs a 'ros__parameters' mapping")
        out.update(_flatten(section["ros__parameters"] or {}))
    return out


def load_config(cls: type[T], path: str | Path, node_name: str, extra: Iterable[str] = ()) -> T:
    """``cls`` built from the ``node_name`` (and ``/**``) section of a parameter file; ``extra`` names
    node-level parameters that are not part of ``cls``."""
    return build_config(cls, read_ros_params(path, node_name), source=str(path), extra=extra)
