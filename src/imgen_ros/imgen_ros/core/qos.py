"""The QoS profiles of the graph's topic classes as plain data (ROS-free), and their rosbag2 form.

One description serves three users: ``nodes._ros`` builds the rclpy profiles from it, the recorder
stores each topic's offered profile in the bag (``offered_qos_profiles``, rosbag2 metadata version
9: a list of ``{history, depth, reliability, durability, deadline, lifespan, liveliness,
liveliness_lease_duration, avoid_ros_namespace_conventions}``, durations as ``{sec, nsec}``), and
a replay picks the profile to publish with as ``ros2 bag play`` does (:func:`playback_profile`).

A duration of ``None`` is "not set": rclpy's default, which every DDS resolves to infinite; in a
bag it is written as the graph reports it, ``RMW_DURATION_INFINITE`` = {sec: 9223372036, nsec:
854775807}, and ``system_default`` liveliness as ``automatic`` (what ``ros2 bag record`` stores).
History and depth, which discovery does not carry (``ros2 bag record`` writes ``unknown``, 0), are
stored as the publisher declares them; ``ros2 bag play`` ignores them either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from imgen_ros.core import topics

HISTORY = ("system_default", "keep_last", "keep_all", "unknown")
RELIABILITY = ("system_default", "reliable", "best_effort", "unknown", "best_available")
DURABILITY = ("system_default", "transient_local", "volatile", "unknown", "best_available")
LIVELINESS = ("system_default", "automatic", "manual_by_node", "manual_by_topic", "unknown", "best_available")

INFINITE_SEC, INFINITE_NSEC = 9223372036, 854775807   # rmw's RMW_DURATION_INFINITE
_INFINITE_NS = INFINITE_SEC * 1_000_000_000 + INFINITE_NSEC
# Infinity as Foxy-era rmw implementations reported it (rosbag2 reads these as infinite, so do we).
_LEGACY_INFINITE = {(0x7FFFFFFF, 0xFFFFFFFF), (0x7FFFFFFF, 0x7FFFFFFF), divmod(0x7FFFFFFFFFFFFFFF, 1_000_000_000)}
ROSBAG2_DEFAULT_DEPTH = 10   # rmw_qos_profile_default.depth: the history ``ros2 bag play`` offers


@dataclass(frozen=True)
class QosProfile:
    """One QoS profile (names as in rmw's string forms, e.g. ``transient_local``)."""

    history: str = "keep_last"
    depth: int = 10
    reliability: str = "reliable"
    durability: str = "volatile"
    deadline_ns: int | None = None           # None: not set (infinite)
    lifespan_ns: int | None = None
    liveliness: str = "system_default"
    liveliness_lease_ns: int | None = None
    avoid_ros_namespace_conventions: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (("history", HISTORY), ("reliability", RELIABILITY), ("durability", DURABILITY),
                              ("liveliness", LIVELINESS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"QoS {name} {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if self.depth < 0:
            raise ValueError(f"QoS depth must be >= 0, got {self.depth}")
        for name in ("deadline_ns", "lifespan_ns", "liveliness_lease_ns"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"QoS {name} must be >= 0 or None, got {value}")

    @property
    def latched(self) -> bool:
        """A late subscriber (transient local itself) still gets the last ``depth`` messages."""
        return self.durability == "transient_local"

    def compatible_key(self) -> tuple[Any, ...]:
        """The policies that decide matching (rosbag2 compares these, not history or lifespan)."""
        return (self.reliability, self.durability, self.deadline_ns, _resolved(self.liveliness),
                self.liveliness_lease_ns)


# The graph's QoS classes (see core.topics for why each topic has its class).
PROFILES: dict[str, QosProfile] = {
    "STATE": QosProfile(depth=5, reliability="best_effort", durability="volatile"),
    "SENSOR": QosProfile(depth=5, reliability="best_effort", durability="volatile"),   # rclpy's sensor data
    "COMMAND": QosProfile(depth=10, reliability="reliable", durability="volatile"),
    "LATCHED": QosProfile(depth=1, reliability="reliable", durability="transient_local"),
    "EVENTS": QosProfile(depth=100, reliability="reliable", durability="transient_local"),
    "VIEW": QosProfile(depth=5, reliability="reliable", durability="volatile"),
}


def profile_of(topic: str) -> QosProfile:
    """The QoS profile a graph topic (relative name, core.topics) is offered and subscribed with."""
    return PROFILES[topics.QOS_CLASSES[topic]]


def _resolved(liveliness: str) -> str:
    return "automatic" if liveliness == "system_default" else liveliness


def _duration_to_rosbag2(ns: int | None) -> dict[str, int]:
    if ns is None:
        return {"sec": INFINITE_SEC, "nsec": INFINITE_NSEC}
    sec, nsec = divmod(int(ns), 1_000_000_000)
    return {"sec": sec, "nsec": nsec}


def _duration_from_rosbag2(value: Mapping[str, Any]) -> int | None:
    sec, nsec = int(value["sec"]), int(value["nsec"])
    if (sec, nsec) in _LEGACY_INFINITE or sec * 1_000_000_000 + nsec >= _INFINITE_NS or (sec, nsec) == (0, 0):
        return None   # infinite, or rmw's "unspecified" {0, 0}
    return sec * 1_000_000_000 + nsec


def to_rosbag2(profile: QosProfile) -> dict[str, Any]:
    """The profile as one entry of rosbag2's ``offered_qos_profiles`` (metadata version 9)."""
    return {
        "history": profile.history,
        "depth": profile.depth,
        "reliability": profile.reliability,
        "durability": profile.durability,
        "deadline": _duration_to_rosbag2(profile.deadline_ns),
        "lifespan": _duration_to_rosbag2(profile.lifespan_ns),
        "liveliness": _resolved(profile.liveliness),
        "liveliness_lease_duration": _duration_to_rosbag2(profile.liveliness_lease_ns),
        "avoid_ros_namespace_conventions": profile.avoid_ros_namespace_conventions,
    }


def _policy(value: Any, names: tuple[str, ...], what: str) -> str:
    """A policy written as its name (version 9) or as rmw's enum value (versions <= 8)."""
    if isinstance(value, bool):
        raise ValueError(f"QoS {what} {value!r} is not a policy")
    if isinstance(value, int):
        if not 0 <= value < len(names):
            raise ValueError(f"QoS {what} {value} is out of range")
        return names[value]
    text = str(value).lower()
    if text not in names:
        raise ValueError(f"QoS {what} {value!r} is not one of {', '.join(names)}")
    return text


def from_rosbag2(entry: Mapping[str, Any]) -> QosProfile:
    """One ``offered_qos_profiles`` entry (metadata version 9 names or the older enum values)."""
    try:
        return QosProfile(
            history=_policy(entry["history"], HISTORY, "history"),
            depth=int(entry["depth"]),
            reliability=_policy(entry["reliability"], RELIABILITY, "reliability"),
            durability=_policy(entry["durability"], DURABILITY, "durability"),
            deadline_ns=_duration_from_rosbag2(entry["deadline"]),
            lifespan_ns=_duration_from_rosbag2(entry["lifespan"]),
            liveliness=_policy(entry["liveliness"], LIVELINESS, "liveliness"),
            liveliness_lease_ns=_duration_from_rosbag2(entry["liveliness_lease_duration"]),
            avoid_ros_namespace_conventions=bool(entry.get("avoid_ros_namespace_conventions", False)),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed QoS profile {dict(entry)!r}: {type(exc).__name__} {exc}") from exc


def playback_profile(offered: Sequence[QosProfile]) -> QosProfile:
    """The profile ``ros2 bag play`` publishes a topic with, from the profiles recorded for it
    (rosbag2_storage ``Rosbag2QoS::adapt_offer_to_recorded_offers``): if every recorded publisher
    offered the same reliability, durability, deadline and liveliness, that profile with rosbag2's
    default history (keep last 10); otherwise, or with nothing recorded, rosbag2's default (reliable,
    volatile, keep last 10)."""
    default = QosProfile(depth=ROSBAG2_DEFAULT_DEPTH)
    if not offered or any(p.compatible_key() != offered[0].compatible_key() for p in offered[1:]):
        return default
    return replace(offered[0], history="keep_last", depth=ROSBAG2_DEFAULT_DEPTH)
