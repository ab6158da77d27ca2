"""Typed dataclass configs <-> ROS parameters and ROS 2 parameter files, read the way rcl reads them
(ROS-free).

Configs. A node's config is a (possibly nested) frozen dataclass. Its fields become ROS parameters
with dotted names (``safety.max_translation_m``). A field declared with :func:`param` documents
itself: a description, a plausible range (an interval such as ``"(0, 0.05]"``, one per element for
tuples) or a set of choices; a nested config declared with ``field(..., metadata=meta(required=True))``
must be given explicitly, never taken from code defaults. :func:`build_config` enforces all of it for Python;
``nodes._ros.declare_config`` enforces the same for nodes and puts it in their ParameterDescriptors.
A field marked ``live=True`` can change while its node runs (the node applies it through
:func:`with_values`); every other parameter is read-only once the node started.

Parameter files. ``config/*.yaml`` use the ROS 2 layout ``<node name>: ros__parameters: {...}``
(nested mappings = dotted names). Node-name keys follow rcl_yaml_param_parser and rclpy: a key
without a leading ``/`` gets one; ``/*`` matches one name token, ``/**`` any number (zero
included), so ``/**/intervention_arbiter`` applies to that node in any namespace while
``intervention_arbiter`` applies only to ``/intervention_arbiter``. Keys may also nest
(``fr3: {intervention_arbiter: {ros__parameters: ...}}`` is ``fr3/intervention_arbiter``).
Scalars are typed like rcl (plain ``1`` is an integer, ``1.0`` and ``1e3`` doubles, ``on``/``y``
booleans, quoted text strings) and a sequence must hold one type. When several sections match a
node, rcl's order decides: sections are grouped by their key as written, groups ordered by first
appearance over all files and ``-p`` rules (a ``-p`` rule without node prefix belongs to ``/**``),
later groups win, and within a group the last value wins.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

PARAMS_KEY = "ros__parameters"
SPEC_KEY = "imgen_param"
# Parameters rclpy declares on every node (TimeSource, type description service).
BUILTIN_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})


class ConfigError(ValueError):
    """A parameter file, rule or value that a node must refuse (one-line message)."""


# ---------------------------------------------------------------- specs
_INTERVAL = re.compile(r"\s*([\[(])\s*([^,\s]+)\s*,\s*([^\]\s)]+)\s*([\])])\s*")


@dataclasses.dataclass(frozen=True)
class Interval:
    """A closed, open or half-open interval of plausible values, written like ``"(0, 0.05]"``."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    @classmethod
    def parse(cls, text: str) -> Interval:
        match = _INTERVAL.fullmatch(text)
        if not match:
            raise ValueError(f"not an interval: {text!r} (write e.g. '(0, 0.05]' or '[0, inf)')")
        lo, hi = float(match[2]), float(match[3])
        if not lo <= hi:
            raise ValueError(f"empty interval {text!r}")
        return cls(lo, hi, match[1] == "(", match[4] == ")")

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{_bound(self.lo)}, {_bound(self.hi)}{')' if self.hi_open else ']'}"


def _bound(x: float) -> str:
    """An interval bound as written: whole numbers in full (2147483647, not 2.14748e+09)."""
    return str(int(x)) if math.isfinite(x) and x.is_integer() and abs(x) < 1e15 else f"{x:g}"


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """What a config field documents about itself (see :func:`param`)."""

    doc: str = ""
    range: Interval | tuple[Interval, ...] | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    live: bool = False       # may change while the node runs (else read-only after start-up)

    def constraint(self) -> str:
        """The allowed values in words ('' when anything of the right type goes)."""
        if isinstance(self.range, Interval):
            return f"range {self.range}"
        if self.range is not None:
            return "ranges " + " x ".join(str(r) for r in self.range)
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (already of the field's type) is not allowed, or None."""
        if isinstance(self.range, Interval):
            scalars: list[Any] = list(value) if isinstance(value, tuple) else [value]
            if all(v in self.range for v in scalars):
                return None
        elif self.range is not None:
            if len(value) == len(self.range) and all(v in r for v, r in zip(value, self.range, strict=True)):
                return None
        elif self.choices:
            if value in self.choices:
                return None
        else:
            return None
        return f"is not {self.constraint()}" if self.range is None else f"is outside its {self.constraint()}"


def meta(doc: str = "", range: str | Sequence[str] | None = None, *, choices: Iterable[str] = (),
         required: bool = False, live: bool = False) -> dict[str, ParamSpec]:
    """``dataclasses.field`` metadata documenting a field (see :func:`param`); for fields that need
    ``field(default_factory=..., metadata=meta(...))``."""
    if range is None:
        parsed: Interval | tuple[Interval, ...] | None = None
    elif isinstance(range, str):
        parsed = Interval.parse(range)
    else:
        parsed = tuple(Interval.parse(r) for r in range)
    return {SPEC_KEY: ParamSpec(doc, parsed, tuple(choices), required, live)}


def param(default: Any, doc: str = "", range: str | Sequence[str] | None = None, *,
          choices: Iterable[str] = (), live: bool = False) -> Any:
    """A dataclass field with its documentation and plausible ``range`` (``"(0, 0.05]"``, or one
    interval per element of a tuple) or ``choices``; ``live``: the node applies a new value while it
    runs (every other parameter is read-only once the node started)."""
    return dataclasses.field(default=default, metadata=meta(doc, range, choices=choices, live=live))


def check_fields(config: Any) -> None:
    """Raise ValueError naming the first field of the dataclass instance ``config`` whose value is
    outside its :func:`param` range or choices (for ``__post_init__``: direct construction refuses
    what :func:`build_config` refuses)."""
    for f in dataclasses.fields(config):
        spec = _spec(f)
        value = getattr(config, f.name)
        if spec is None or _is_dataclass_type(type(value)):
            continue
        if (problem := spec.problem(value)) is not None:
            raise ValueError(f"{f.name} = {value!r} {problem}" + (f" ({spec.doc})" if spec.doc else ""))


def _representable(tp: Any) -> bool:
    """Scalars, tuples of scalars and nested dataclasses map to ROS parameters; dicts/lists do not."""
    if _is_dataclass_type(tp) or tp in (bool, int, float, str):
        return True
    return typing.get_origin(tp) is tuple


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """init fields that can be parameters (others, e.g. dict key maps, keep their defaults)."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init and _representable(hints[f.name])]


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """One ROS parameter: its Python type (None: untyped node-level extra), default and spec."""

    type: Any
    default: Any
    spec: ParamSpec | None = None


def _spec(f: dataclasses.Field) -> ParamSpec | None:
    return f.metadata.get(SPEC_KEY)


def param_table(cls: type, prefix: str = "") -> dict[str, ParamInfo]:
    """Dotted parameter name -> :class:`ParamInfo` for every leaf field of ``cls`` (tuples -> lists)."""
    out: dict[str, ParamInfo] = {}
    instance = cls()
    for f, tp in _fields(cls):
        key = f"{prefix}{f.name}"
        if _is_dataclass_type(tp):
            out.update(param_table(tp, key + "."))
        else:
            value = getattr(instance, f.name)
            out[key] = ParamInfo(tp, list(value) if isinstance(value, tuple) else value, _spec(f))
    return out


def extra_table(extra: Mapping[str, Any] | Iterable[str]) -> dict[str, ParamInfo]:
    """Node-level parameters outside the config class: names, name -> default, or name -> :func:`param`."""
    if not isinstance(extra, Mapping):
        return {name: ParamInfo(None, None) for name in extra}
    out: dict[str, ParamInfo] = {}
    for name, value in extra.items():
        if isinstance(value, dataclasses.Field):
            out[name] = ParamInfo(type(value.default), value.default, _spec(value))
        else:
            out[name] = ParamInfo(type(value), value)
    return out


def flat_defaults(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted parameter name -> default value (tuples become lists) for every leaf field of ``cls``."""
    return {name: info.default for name, info in param_table(cls, prefix).items()}


# ---------------------------------------------------------------- building configs
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("tuple", "list")


def _coerce(value: Any, tp: Any, key: str, source: str, exact: bool) -> Any:
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{source}: parameter '{key}' = {value!r} is not a valid {_type_name(tp)}")
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
        if exact and isinstance(value, int):
            raise ConfigError(f"{source}: parameter '{key}' = {value!r} is an integer where a float is expected "
                              f"(ROS refuses it: write {float(value)!r})")
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
            return tuple(_coerce(v, args[0], key, source, exact) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{source}: parameter '{key}' needs {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_coerce(v, a, key, source, exact) for v, a in zip(value, args, strict=True))
    return value


def _build(cls: type[T], values: Mapping[str, Any], prefix: str, where: Any) -> T:
    kwargs: dict[str, Any] = {}
    for f, tp in _fields(cls):
        key = f"{prefix}{f.name}"
        if _is_dataclass_type(tp):
            kwargs[f.name] = _build(tp, values, key + ".", where)
        elif key in values:
            kwargs[f.name] = values[key]
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where(prefix)}: {exc}") from exc


def _required_blocks(cls: type, prefix: str = "") -> dict[str, list[str]]:
    """Prefix of every ``required`` nested config -> its leaf parameter names."""
    out: dict[str, list[str]] = {}
    for f, tp in _fields(cls):
        key = f"{prefix}{f.name}"
        spec = _spec(f)
        if spec is not None and spec.required:
            out[key] = list(param_table(tp, key + ".")) if _is_dataclass_type(tp) else [key]
        if _is_dataclass_type(tp):
            out.update(_required_blocks(tp, key + "."))
    return out


def build_config(cls: type[T], values: Mapping[str, Any], source: str = "parameters", prefix: str = "",
                 extra: Mapping[str, Any] | Iterable[str] = (), *, exact_types: bool = False,
                 origins: Mapping[str, str] | None = None) -> T:
    """Instantiate ``cls`` from the dotted ``values`` that were given (missing keys keep defaults).

    Refuses, naming the origin of the key (``origins[key]``, else ``source``): unknown keys (except
    the node-level ``extra`` ones, which are checked against their spec when they carry one), values
    of the wrong type (``exact_types``: an integer where a float is expected, as ROS refuses it),
    values outside a field's range or choices, a ``required`` block not given in full, and whatever
    the dataclasses' own validation refuses."""
    origins = origins or {}
    table = param_table(cls, prefix)
    extras = extra_table(extra)
    unknown = sorted(k for k in values if k.startswith(prefix) and k not in table and k not in extras)
    if unknown:
        hints = {k: difflib.get_close_matches(k, list(table) + list(extras), 1) for k in unknown}
        said = "; ".join(f"'{k}'" + (f" (did you mean '{hints[k][0]}'?)" if hints[k] else "") for k in unknown)
        where = sorted({origins.get(k, source) for k in unknown})
        raise ConfigError(f"{', '.join(where)}: unknown parameter(s) {unknown}: {said}; known: {sorted(table)}")
    typed: dict[str, Any] = {}
    for key, value in values.items():
        info = table.get(key) or extras.get(key)
        if info is None or info.type is None:
            continue
        origin = origins.get(key, source)
        typed[key] = _coerce(value, info.type, key, origin, exact_types)
        if info.spec is not None and (problem := info.spec.problem(typed[key])) is not None:
            doc = f" ({info.spec.doc})" if info.spec.doc else ""
            raise ConfigError(f"{origin}: parameter '{key}' = {value!r} {problem}{doc}")
    for block, leaves in _required_blocks(cls, prefix).items():
        missing = [k for k in leaves if k not in values]
        if missing:
            raise ConfigError(f"{source}: the '{block}' parameters must be given explicitly (a parameter file), "
                              f"not taken from code defaults; missing: {missing}")

    def where(at: str) -> str:
        found = sorted({origins.get(k, source) for k in values if k.startswith(at)})
        return ", ".join(found) if found else source

    return _build(cls, typed, prefix, where)


def with_values(config: T, changes: Mapping[str, Any], source: str = "parameters") -> T:
    """``config`` with the dotted ``changes`` applied (a live parameter set while the node runs).

    Each value is typed as :func:`build_config` types it (exact ROS types) and checked against its
    field's range or choices; the changed dataclasses run their own validation. Fields not named keep
    their current values (also those that are not parameters). Raises ConfigError naming the key."""
    table = param_table(type(config))
    typed: dict[str, Any] = {}
    for key, value in changes.items():
        info = table.get(key)
        if info is None:
            raise ConfigError(f"{source}: unknown parameter '{key}'")
        typed[key] = _coerce(value, info.type, key, source, True)
        if info.spec is not None and (problem := info.spec.problem(typed[key])) is not None:
            doc = f" ({info.spec.doc})" if info.spec.doc else ""
            raise ConfigError(f"{source}: parameter '{key}' = {value!r} {problem}{doc}")

    def apply(obj: Any, prefix: str) -> Any:
        updates: dict[str, Any] = {}
        for f, tp in _fields(type(obj)):
            key = f"{prefix}{f.name}"
            if _is_dataclass_type(tp) and any(k.startswith(key + ".") for k in typed):
                updates[f.name] = apply(getattr(obj, f.name), key + ".")
            elif key in typed:
                updates[f.name] = typed[key]
        return dataclasses.replace(obj, **updates) if updates else obj

    try:
        return apply(config, "")
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{source}: {exc}") from None


# ---------------------------------------------------------------- parameter files, read like rcl
_TRUE = {"Y", "y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"N", "n", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_SPECIAL_FLOATS = {f"{sign}.{word}" for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")} | \
    {".nan", ".NaN", ".NAN"}
_C_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_C_FLOAT = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)
_C_HEX_FLOAT = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")
_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def rcl_scalar(text: str) -> bool | int | float | str:
    """A plain (unquoted, untagged) YAML scalar typed as rcl_yaml_param_parser types it."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _C_INT.fullmatch(text):
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        value = sign * (int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 8) if digits.startswith("0")
                        else int(digits))
        if -2**63 <= value < 2**63:
            return value
        return float(value)   # strtoll overflows: rcl falls through to strtod
    if text in _SPECIAL_FLOATS:
        return float(text.replace(".", ""))
    if _C_FLOAT.fullmatch(text):
        return float(text)
    if _C_HEX_FLOAT.fullmatch(text):
        negative = text.startswith("-")
        value = float.fromhex(text.lstrip("+-"))
        return -value if negative else value
    return text


class _RclLoader(yaml.SafeLoader):
    """SafeLoader whose plain scalars are typed by :func:`rcl_scalar` (quoted ones stay strings)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return "!rcl_plain"
        return super().resolve(kind, value, implicit)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """Keys stay text, as rcl reads them (a key ``on`` is not a boolean)."""
        self.flatten_mapping(node)
        out: dict = {}
        for key_node, value_node in node.value:
            key = self.construct_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) \
                else self.construct_object(key_node, deep=deep)
            out[key] = self.construct_object(value_node, deep=deep)
        return out


def _construct_plain(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if text == "":
        return None
    return rcl_scalar(text)


_RclLoader.add_constructor("!rcl_plain", _construct_plain)
# launch_ros writes a launch file's list values with yaml.dump, as tagged tuples; rcl ignores the tag
_RclLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                           lambda loader, node: loader.construct_sequence(node, deep=True))


def load_rcl_yaml(text: str) -> Any:
    """``text`` parsed as YAML with rcl's scalar typing."""
    return yaml.load(text, Loader=_RclLoader)


def _check_value(value: Any, where: str) -> Any:
    """A parameter value as rcl accepts it: a scalar or a sequence of scalars of one type."""
    if value is None:
        raise ConfigError(f"{where}: no value")
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if not value:
            raise ConfigError(f"{where}: empty sequence (ROS cannot type it)")
        if len(kinds) != 1 or kinds & {list, dict, type(None)}:
            raise ConfigError(f"{where}: a sequence must hold values of one scalar type, got {value!r}")
        return value
    if isinstance(value, dict):
        raise ConfigError(f"{where}: unexpected mapping")
    return value


def _flatten(mapping: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, where, f"{name}."))
        else:
            out[name] = _check_value(value, f"{where}: parameter '{name}'")
    return out


def validate_node_key(name: str) -> None:
    """Refuse a node-name key that rcl_yaml_param_parser refuses (tokens, ``*`` and ``**`` only)."""
    if name in ("/**", "/*"):
        return
    body = name[1:] if name.startswith("/") else name
    tokens = body.split("/")
    for token in tokens:
        if not token:
            raise ConfigError(f"node name '{name}' has an empty token (repeated or trailing '/')")
        if token not in ("*", "**") and not _NAME_TOKEN.fullmatch(token):
            raise ConfigError(f"node name '{name}': '{token}' is not a valid name token (letters, digits, '_'; "
                              f"no leading digit) nor '*' / '**'")


@dataclasses.dataclass(frozen=True)
class Section:
    """Parameters for the node(s) a key matches, from a file section or a ``-p`` rule."""

    node: str                  # the key as rcl stores it ('intervention_arbiter', '/**/x', '/**')
    params: dict[str, Any]     # dotted name -> value
    origin: str                # the file, or '-p name:=value'

    def matches(self, fqn: str) -> bool:
        return node_key_matches(self.node, fqn)


def node_key_matches(key: str, fqn: str) -> bool:
    """Whether a parameter-file node key applies to the node ``fqn`` (rclpy's rule: a missing
    leading '/' is added; ``/*`` is one token, ``/**`` any number of tokens)."""
    name = key if key.startswith("/") else f"/{key}"
    return re.fullmatch(name.replace("/*", r"(/\w+)"), fqn, re.ASCII) is not None


def fully_qualified(name: str, namespace: str = "/") -> str:
    """``/ns/name`` of a node (a name starting with '/' is already fully qualified)."""
    if name.startswith("/"):
        return name
    return f"{namespace.rstrip('/')}/{name}"


def _sections_of(data: Mapping[str, Any], origin: str, stack: tuple[str, ...] = ()) -> list[Section]:
    out: list[Section] = []
    for key, value in data.items():
        key = str(key)
        if key.startswith(PARAMS_KEY):   # rcl compares the prefix only
            if not stack:
                raise ConfigError(f"{origin}: '{PARAMS_KEY}' needs a node name above it")
            node = ""
            for token in stack:
                node = token if not node else node + ("" if node.endswith("/") else "/") + token
            validate_node_key(node)
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"{origin}: section '{node}': '{PARAMS_KEY}' must be a mapping")
            out.append(Section(node, _flatten(value or {}, f"{origin}: section '{node}'"), origin))
        elif isinstance(value, Mapping) and (found := _sections_of(value, origin, (*stack, key))):
            out.extend(found)
        else:
            where = "/".join((*stack, key))
            raise ConfigError(f"{origin}: '{where}' needs a '{PARAMS_KEY}' mapping")
    return out


def read_sections(path: str | Path) -> list[Section]:
    """Every node section of a ROS 2 parameter file, in file order."""
    try:
        data = load_rcl_yaml(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read parameter file {path}: {exc}") from exc
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of node names to '{PARAMS_KEY}'")
    return _sections_of(data, str(path))


def param_rule(rule: str) -> Section:
    """A ``-p [node:]name:=value`` rule (the value is YAML; no node prefix means ``/**``)."""
    origin = f"-p {rule}"
    if ":=" not in rule:
        raise ConfigError(f"{origin}: a parameter rule is name:=value")
    left, text = rule.split(":=", 1)
    node, _, name = left.rpartition(":")
    node = node or "/**"
    validate_node_key(node)
    try:
        value = load_rcl_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: the value is not YAML: {exc}") from exc
    return Section(node, {name: _check_value(value, origin)}, origin)


_VALUE_FLAGS = {"-r", "--remap", "-e", "--enclave", "--log-level", "--log-config-file", "--log-file-name"}


def ros_param_sources(argv: Sequence[str]) -> list[Section]:
    """The ``--params-file`` sections and ``-p`` rules of the ``--ros-args`` in ``argv``, in order."""
    out: list[Section] = []
    in_ros_args = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--ros-args":
            in_ros_args = True
        elif in_ros_args and arg == "--":
            in_ros_args = False
        elif in_ros_args and arg in ("-p", "--param", "--params-file") and i + 1 < len(argv):
            out.extend(read_sections(argv[i + 1]) if arg == "--params-file" else [param_rule(argv[i + 1])])
            i += 1
        elif in_ros_args and arg in _VALUE_FLAGS:
            i += 1
        i += 1
    return out


def params_file_args(argv: Sequence[str]) -> list[str]:
    """The ``--params-file`` paths of the ``--ros-args`` in ``argv``."""
    out, in_ros_args = [], False
    for i, arg in enumerate(argv):
        if arg == "--ros-args":
            in_ros_args = True
        elif arg == "--":
            in_ros_args = False
        elif in_ros_args and arg == "--params-file" and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def overrides_for(sections: Iterable[Section], fqn: str) -> dict[str, tuple[Any, str]]:
    """Dotted name -> (value, origin) that rcl + rclpy hand the node ``fqn`` as overrides."""
    groups: dict[str, dict[str, tuple[Any, str]]] = {}
    for section in sections:
        group = groups.setdefault(section.node, {})
        for name, value in section.params.items():
            group[name] = (value, section.origin)
    out: dict[str, tuple[Any, str]] = {}
    for node, group in groups.items():
        if node_key_matches(node, fqn):
            out.update(group)
    return out


def check_sections(sections: Iterable[Section], nodes: Mapping[str, Collection[str]]) -> list[str]:
    """Problems of ``sections`` for a process hosting ``nodes`` (FQN -> declared parameter names): a
    section matching none of them, or a parameter that no node it matches declares."""
    problems: list[str] = []
    for section in sections:
        matching = [fqn for fqn in nodes if section.matches(fqn)]
        if not matching:
            names = [fqn.rsplit("/", 1)[-1] for fqn in nodes]
            hint = difflib.get_close_matches(section.node.rsplit("/", 1)[-1], names, 1)
            problems.append(f"{section.origin}: section '{section.node}' matches no node of this process "
                            f"({', '.join(nodes)}); "
                            + (f"did you mean '/**/{hint[0]}'?" if hint else "key it '/**/<node name>'"))
            continue
        declared = set().union(*(nodes[fqn] for fqn in matching))
        for name in section.params:
            if name not in declared:
                hint = difflib.get_close_matches(name, sorted(declared), 1)
                problems.append(f"{section.origin}: unknown parameter '{name}' in section '{section.node}' "
                                f"(not declared by {', '.join(matching)})"
                                + (f"; did you mean '{hint[0]}'?" if hint else ""))
    return problems


def read_ros_params(path: str | Path, node_name: str) -> dict[str, Any]:
    """Dotted parameters a ROS 2 parameter file gives the node ``node_name`` (a bare name is the
    node in the root namespace; give ``/ns/name`` for a namespaced one), merged as rcl merges them."""
    fqn = fully_qualified(node_name)
    return {name: value for name, (value, _) in overrides_for(read_sections(path), fqn).items()}


def load_config(cls: type[T], path: str | Path, node_name: str,
                extra: Mapping[str, Any] | Iterable[str] = ()) -> T:
    """``cls`` built from what the parameter file gives ``node_name``, typed and checked as the node
    checks it (``extra``: node-level parameters that are not part of ``cls``)."""
    return build_config(cls, read_ros_params(path, node_name), source=str(path), extra=extra, exact_types=True)
