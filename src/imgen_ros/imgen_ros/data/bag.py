"""rosbag2 (MCAP) episode bags via ``rosbags``: the chunked, crash-tolerant writer, the reader and
the repair of bags whose recorder was killed (ROS-free; messages travel as CDR bytes).

One episode = one rosbag2 directory. The writer collects messages into a *chunk* (a private
single-file bag in ``<bag>/.chunk_<k>/``); every ``chunk_s`` seconds (and at the end) the chunk is
closed by rosbags, its ``.mcap`` is moved into the bag as ``<bag name>_<k>.mcap`` and the bag's
``metadata.yaml`` is rewritten atomically to list every closed file. At any instant the directory
is therefore a valid multi-file rosbag2 bag holding everything but the open chunk: a SIGKILL loses
at most the last ``chunk_s`` seconds (documented bound). ``repair_bag`` (run by the recorder on
start-up) deletes such a half-written chunk and reports what was lost; ``custom_data`` records
``imgen_complete`` ("true" only after the episode's terminal event) and the episode's outcome.
Each topic carries the QoS its publishers offered (``offered_qos_profiles`` in ``metadata.yaml`` and
in the MCAP channel, as rosbag2 writes them; see ``core.qos``), so ``ros2 bag play`` re-offers
transient local where the graph used it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.metadata import dump_qos_v9, parse_qos
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from imgen_ros.core import topics
from imgen_ros.core.qos import QosProfile, from_rosbag2, to_rosbag2

# libyaml's parser and emitter where PyYAML has them: the recorder reads and writes metadata.yaml at
# every chunk, and the pure-Python ones cost it ~30 ms of CPU per chunk here (bench/bench_recorder.py).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` (libyaml where available) of a document without aliases: rosbag2 writes none,
    and a few nested aliases expand to billions of nodes when the data is printed or walked (an alias
    bomb; yaml.YAMLError)."""
    if "*" in text and any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=_YAML_LOADER)):
        raise yaml.YAMLError("the YAML uses aliases (*name), which rosbag2 metadata never does")
    return yaml.load(text, Loader=_YAML_LOADER)


def dump_yaml(data: Any) -> str:
    """``yaml.safe_dump(data, sort_keys=False)`` (libyaml where available)."""
    return yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False)


IMGEN_MSGS = ("DeltaPoseCommand", "ControlState", "ObjectPoseEstimate", "EpisodeEvent", "LoopTiming", "RobotState",
              "PoseError")

# What the recorder records: graph topic (core.topics, with its QoS class) -> ROS 2 message type.
# Add an entry to record a new topic; the recorder skips (with a warning) a topic whose message
# package is not installed, so the viewer mirrors are recorded wherever their publishers can run.
RECORDED_TOPICS: dict[str, str] = {
    topics.ROBOT_COMMAND: "imgen_msgs/msg/DeltaPoseCommand",
    topics.POLICY_COMMAND: "imgen_msgs/msg/DeltaPoseCommand",
    topics.TELEOP_COMMAND: "imgen_msgs/msg/DeltaPoseCommand",
    topics.TELEOP_ENGAGED: "std_msgs/msg/Bool",
    topics.CONTROL_STATE: "imgen_msgs/msg/ControlState",
    topics.EPISODE_EVENTS: "imgen_msgs/msg/EpisodeEvent",
    topics.ROBOT_STATE: "imgen_msgs/msg/RobotState",
    topics.OBJECT_POSE: "imgen_msgs/msg/ObjectPoseEstimate",
    topics.OBJECT_POSE_TRUE: "imgen_msgs/msg/ObjectPoseEstimate",
    topics.OBJECT_REVEALED: "imgen_msgs/msg/ObjectPoseEstimate",
    topics.POLICY_TIMING: "imgen_msgs/msg/LoopTiming",
    topics.POSE_ERROR: "imgen_msgs/msg/PoseError",
    topics.JOINT_STATES: "sensor_msgs/msg/JointState",
    topics.TCP_POSE: "geometry_msgs/msg/PoseStamped",
    topics.BELIEVED_POSE: "geometry_msgs/msg/PoseStamped",
    topics.TRUE_POSE: "geometry_msgs/msg/PoseStamped",
    topics.MARKERS: "visualization_msgs/msg/MarkerArray",
}
META = "metadata.yaml"
CHUNK_PREFIX = ".chunk_"


def _imgen_msgs_dir() -> Path:
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("imgen_msgs")) / "msg"
    except (ImportError, LookupError, ValueError):
        return Path(__file__).resolve().parents[3] / "imgen_msgs" / "msg"


_TYPESTORE = None


def typestore():
    """ROS 2 Kilted standard types plus imgen_msgs (parsed from the installed .msg files)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        store = get_typestore(Stores.ROS2_KILTED)
        folder = _imgen_msgs_dir()
        types: dict[str, Any] = {}
        for name in IMGEN_MSGS:
            path = folder / f"{name}.msg"
            if not path.is_file():
                raise FileNotFoundError(f"imgen_msgs definition {path} not found (is the workspace built?)")
            types.update(get_types_from_msg(path.read_text(), f"imgen_msgs/msg/{name}"))
        store.register(types)
        _TYPESTORE = store
    return _TYPESTORE


def _ns(value: Mapping[str, Any], key: str) -> int:
    return int(value[key]["nanoseconds" if key == "duration" else "nanoseconds_since_epoch"])


def merge_metadata(chunks: list[dict[str, Any]], custom_data: Mapping[str, str]) -> dict[str, Any]:
    """One bag's ``rosbag2_bagfile_information`` from the metadata of its closed chunk files."""
    infos = [c["rosbag2_bagfile_information"] for c in chunks]
    files = [f for info in infos for f in info["files"]]
    start = min(_ns(f, "starting_time") for f in files)
    end = max(_ns(f, "starting_time") + _ns(f, "duration") for f in files)
    counts: dict[str, dict[str, Any]] = {}
    for info in infos:
        for entry in info["topics_with_message_count"]:
            name = entry["topic_metadata"]["name"]
            if name not in counts:
                counts[name] = {"message_count": 0, "topic_metadata": entry["topic_metadata"]}
            counts[name]["message_count"] += int(entry["message_count"])
    merged = dict(infos[0])
    merged.update({
        "files": files,
        "relative_file_paths": [f["path"] for f in files],
        "message_count": sum(int(f["message_count"]) for f in files),
        "starting_time": {"nanoseconds_since_epoch": start},
        "duration": {"nanoseconds": end - start},
        "topics_with_message_count": list(counts.values()),
        "custom_data": dict(custom_data) or None,
    })
    return {"rosbag2_bagfile_information": merged}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def rosbags_qos(profile: QosProfile | None) -> list[Any]:
    """``offered_qos_profiles`` for rosbags' writer (one profile, or none)."""
    return parse_qos([to_rosbag2(profile)]) if profile is not None else []


def offered_qos(connection: Any) -> list[QosProfile]:
    """The offered QoS profiles rosbags read for a connection (from metadata.yaml or the MCAP channel)."""
    ext = getattr(connection, "ext", None)
    return [from_rosbag2(entry) for entry in dump_qos_v9(list(getattr(ext, "offered_qos_profiles", None) or []))]


class EpisodeBagWriter:
    """Write one episode bag in closed chunks (see the module docstring)."""

    def __init__(self, path: str | Path, topic_types: Mapping[str, str], custom_data: Mapping[str, str] | None = None,
                 chunk_messages_max: int = 100_000, topic_qos: Mapping[str, QosProfile] | None = None) -> None:
        """``topic_types``: stored topic name -> message type; ``topic_qos``: stored name -> the profile its
        publishers offer (stored as ``offered_qos_profiles``; a topic without one gets none, as rosbag2
        stores for a topic it saw no publisher of)."""
        self.path = Path(path)
        unknown = sorted(set(topic_qos or {}) - set(topic_types))
        if unknown:
            raise KeyError(f"QoS given for topics that are not recorded: {unknown}")
        if self.path.exists():
            raise FileExistsError(f"bag {self.path} already exists")
        self.path.mkdir(parents=True)
        self.topic_types = dict(topic_types)
        self.topic_qos = dict(topic_qos or {})
        self.custom_data: dict[str, str] = {"imgen_complete": "false", **(custom_data or {})}
        self.chunk_messages_max = chunk_messages_max
        self._chunks: list[dict[str, Any]] = []
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self._chunk_dir: Path | None = None
        self._pending = 0
        self.messages_written = 0

    def _open_chunk(self) -> None:
        index = len(self._chunks)
        self._chunk_dir = self.path / f"{CHUNK_PREFIX}{index:04d}"
        self._writer = Writer(self._chunk_dir, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        store = typestore()
        self._connections = {t: self._writer.add_connection(t, msgtype, typestore=store,
                                                            offered_qos_profiles=rosbags_qos(self.topic_qos.get(t)))
                             for t, msgtype in self.topic_types.items()}

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Add one CDR-serialized message (``timestamp_ns``: receive time, ns since the epoch)."""
        if topic not in self.topic_types:
            raise KeyError(f"topic {topic!r} is not recorded in {self.path} (known: {sorted(self.topic_types)})")
        if self._writer is None:
            self._open_chunk()
        assert self._writer is not None
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        self._pending += 1
        self.messages_written += 1
        if self._pending >= self.chunk_messages_max:
            self.flush()

    def flush(self) -> None:
        """Close the open chunk (if it holds messages) and publish it in the bag's metadata."""
        if self._writer is None or self._chunk_dir is None:
            return
        self._writer.close()
        chunk_dir, self._writer = self._chunk_dir, None
        if self._pending == 0:
            shutil.rmtree(chunk_dir)
            return
        index = len(self._chunks)
        final_name = f"{self.path.name}_{index}.mcap"
        meta = load_yaml((chunk_dir / META).read_text())
        info = meta["rosbag2_bagfile_information"]
        (chunk_src,) = [chunk_dir / Path(p).name for p in info["relative_file_paths"]]
        os.replace(chunk_src, self.path / final_name)
        info["relative_file_paths"] = [final_name]
        for f in info["files"]:
            f["path"] = final_name
        shutil.rmtree(chunk_dir)
        self._chunks.append(meta)
        self._pending = 0
        self._write_metadata()

    def _write_metadata(self) -> None:
        if self._chunks:
            _write_atomic(self.path / META, dump_yaml(merge_metadata(self._chunks, self.custom_data)))

    def close(self, custom_data: Mapping[str, str] | None = None) -> None:
        """Flush and finalize; ``custom_data`` entries (strings) are added to the bag's metadata."""
        self.custom_data.update(custom_data or {})
        self.flush()
        self._write_metadata()


@dataclass(frozen=True)
class RepairReport:
    path: Path
    removed_chunks: int
    valid: bool          # a readable bag remains
    complete: bool       # the episode's terminal event was recorded


def repair_bag(path: str | Path) -> RepairReport:
    """Delete half-written chunks of a killed recording; remove the directory if nothing was closed."""
    path = Path(path)
    chunks = sorted(p for p in path.glob(f"{CHUNK_PREFIX}*") if p.is_dir())
    for chunk in chunks:
        shutil.rmtree(chunk)
    meta = path / META
    tmp = path / (META + ".tmp")
    if tmp.exists():
        tmp.unlink()
    if not meta.exists():
        if path.exists() and not any(path.iterdir()):
            path.rmdir()
        return RepairReport(path, len(chunks), valid=False, complete=False)
    info = load_yaml(meta.read_text())["rosbag2_bagfile_information"]
    complete = (info.get("custom_data") or {}).get("imgen_complete") == "true"
    return RepairReport(path, len(chunks), valid=True, complete=complete)


class BagError(ValueError):
    """An unreadable episode bag; the one-line message names the bag directory and, where known, the file."""


MCAP_MAGIC = b"\x89MCAP0\r\n"


def bag_info(path: str | Path) -> dict[str, Any]:
    """The ``rosbag2_bagfile_information`` of a bag directory; BagError if it is missing or unreadable."""
    path = Path(path)
    meta = path / META
    if not path.is_dir():
        raise BagError(f"bag {path}: {'not a directory' if path.exists() else 'no such directory'}")
    if not meta.is_file():
        what = "empty directory" if not any(path.iterdir()) else "not a rosbag2 directory"
        raise BagError(f"bag {path}: no {META} ({what}; a recording killed before its first chunk?)")
    try:
        info = load_yaml(meta.read_text())["rosbag2_bagfile_information"]
        if not isinstance(info, dict):
            raise TypeError("not a mapping")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BagError(f"bag {path}: file {meta.name} is unreadable ({type(exc).__name__}: {_one_line(exc)})") from exc
    return info


def check_bag_files(path: str | Path) -> None:
    """Every storage file the bag's metadata lists exists and, for MCAP, is whole (magic at both ends).

    A truncated MCAP (a recorder killed mid-chunk, a copy cut short) lacks the closing magic bytes.
    """
    path = Path(path)
    files = bag_info(path).get("relative_file_paths") or []
    if not isinstance(files, list) or not all(isinstance(n, str) and n for n in files):
        raise BagError(f"bag {path}: file {META} has a malformed relative_file_paths entry (expected a list of "
                       f"file names, got {_one_line(repr(files))})")
    if not files:
        raise BagError(f"bag {path}: {META} lists no storage file")
    if len(set(files)) != len(files):  # its messages would be read twice
        twice = sorted({n for n in files if files.count(n) > 1})
        raise BagError(f"bag {path}: {META} lists {', '.join(twice)} more than once")
    for name in files:
        if Path(name).name != name or name in (".", ".."):   # rosbag2 lists plain names inside the bag
            raise BagError(f"bag {path}: {META} lists {name!r}, which is not a file name inside the bag "
                           "(a path outside it or into a subfolder)")
        f = path / name
        if not f.is_file():
            raise BagError(f"bag {path}: file {name} is missing")
        if f.suffix != ".mcap":
            continue
        size = f.stat().st_size
        with f.open("rb") as handle:
            head = handle.read(len(MCAP_MAGIC))
            handle.seek(max(size - len(MCAP_MAGIC), 0))
            tail = handle.read(len(MCAP_MAGIC))
        if size == 0:
            raise BagError(f"bag {path}: file {name} is empty (0 bytes)")
        if head != MCAP_MAGIC:
            raise BagError(f"bag {path}: file {name} is not an MCAP file ({size} bytes, no MCAP magic)")
        if size < 2 * len(MCAP_MAGIC) or tail != MCAP_MAGIC:
            raise BagError(f"bag {path}: file {name} is truncated ({size} bytes, no closing MCAP magic)")
    _check_no_copied_chunk(path, files)


def _check_no_copied_chunk(path: Path, files: list[str]) -> None:
    """BagError if two storage files of the bag hold the same bytes (a chunk copied in: its messages would be
    read twice). Only files of equal size are hashed."""
    by_size: dict[int, list[str]] = {}
    for name in files:
        by_size.setdefault((path / name).stat().st_size, []).append(name)
    for names in (n for n in by_size.values() if len(n) > 1):
        seen: dict[str, str] = {}
        for name in names:
            with (path / name).open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if digest in seen:
                raise BagError(f"bag {path}: file {name} is a copy of {seen[digest]} (its messages would be read "
                               "twice)")
            seen[digest] = name


def _one_line(exc: BaseException | str) -> str:
    """``exc``'s message on one line (at most 300 characters); for an exception without one (a
    MemoryError from a corrupt record size), what it usually means."""
    text = " ".join(str(exc).split())[:300]
    if not text and isinstance(exc, MemoryError):
        return "a corrupt record claims an impossible size"
    return text


def bag_custom_data(path: str | Path) -> dict[str, str]:
    """The bag's ``custom_data`` (imgen_task, imgen_complete, ...); BagError if the metadata is unreadable."""
    custom = bag_info(path).get("custom_data") or {}
    if not isinstance(custom, dict):
        raise BagError(f"bag {path}: file {META} has a malformed custom_data entry")
    return {str(k): str(v) for k, v in custom.items()}


def bag_typestore(connections: Iterable[Any]):
    """The types to decode a bag with: imgen_msgs as the bag's own message definitions describe them
    (a bag recorded before a message gained a field still decodes), the installed ones otherwise."""
    own: dict[str, Any] = {}
    for conn in connections:
        msgdef = getattr(conn, "msgdef", None)
        if conn.msgtype.startswith("imgen_msgs/") and msgdef is not None and getattr(msgdef, "data", ""):
            own.update({name: t for name, t in get_types_from_msg(msgdef.data, conn.msgtype).items()
                        if name.startswith("imgen_msgs/")})
    if not own:
        return typestore()
    store = get_typestore(Stores.ROS2_KILTED)
    installed = typestore()
    store.register({name: installed.fielddefs[name] for name in installed.fielddefs
                    if name.startswith("imgen_msgs/") and name not in own})
    store.register(own)
    return store


def read_bag(path: str | Path, wanted: Iterable[str] | None = None) -> dict[str, list[tuple[int, Any]]]:
    """topic -> [(receive time ns, deserialized message)] in time order (rosbags message classes).

    BagError (one line: bag, file where known, reason) if the bag cannot be read: missing or bad
    metadata, a missing, truncated or corrupt storage file, undecodable messages.
    """
    path = Path(path)
    check_bag_files(path)
    out: dict[str, list[tuple[int, Any]]] = {}
    try:
        with Reader(path) as reader:
            store = bag_typestore(reader.connections)
            conns = [c for c in reader.connections if wanted is None or c.topic in set(wanted)]
            for conn, timestamp, raw in reader.messages(connections=conns):
                out.setdefault(conn.topic, []).append((timestamp, store.deserialize_cdr(raw, conn.msgtype)))
    except Exception as exc:  # rosbags raises ReaderError, but also struct/type/key errors on corrupt bytes
        raise BagError(f"bag {path}: unreadable ({type(exc).__name__}: {_one_line(exc)})") from exc
    return out


@dataclass(frozen=True)
class BagTopic:
    """One recorded topic as the bag's metadata lists it."""

    name: str
    type: str
    message_count: int
    offered_qos: tuple[QosProfile, ...]


def bag_topics(path: str | Path) -> list[BagTopic]:
    """The topics in a bag's ``metadata.yaml`` with their message counts and offered QoS profiles
    (metadata version 9 lists, or the older serialized-YAML strings); BagError if malformed."""
    info = bag_info(path)
    out: list[BagTopic] = []
    try:
        for entry in info.get("topics_with_message_count") or []:
            meta = entry["topic_metadata"]
            offered = meta.get("offered_qos_profiles") or []
            if isinstance(offered, str):
                offered = load_yaml(offered) or []
            out.append(BagTopic(str(meta["name"]), str(meta["type"]), int(entry["message_count"]),
                                tuple(from_rosbag2(q) for q in offered)))
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise BagError(f"bag {path}: file {META} has a malformed topic entry "
                       f"({type(exc).__name__}: {_one_line(exc)})") from exc
    return out
