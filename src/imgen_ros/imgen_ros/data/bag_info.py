"""What one recorded episode bag holds: the summary ``imgen bag info`` prints and the timeline
``imgen bag plot`` draws (ROS-free; reads bags with ``data.bag``).

The episode runs from its START event to its SUCCESS/FAILURE/ABORT (a bag without one: to its last
message). Within it:

- steps: the commands the arbiter sent to the robot (``robot/command``), by source;
- takeovers: the runs of HUMAN in the arbiter's control state (``control_state``), each one a
  human segment (start, end, in seconds after START);
- corruption: the policy's ``policy/pose_error`` of this episode (mode, seed, per-object offset),
  the recorder's ``imgen_noise`` setting, and the offset measured in the bag: the median of
  believed (``object_pose``) minus true (``object_pose/true``, simulation only) position before the
  reveal, which is the corruption wherever it was applied (the sim graph corrupts in sim_node);
- reveal: the first valid ``object_pose/revealed`` (contact revealed the object) and the TCP there;
- the TCP path and the poses: the samples stamped from START on (the newest before START only where
  there is none: a state latched at START may still show the scene before a reset).

Times are the messages' header stamps (when the decision, event or measurement happened; the
receive time where a message has no stamp): the recorder's receive order across topics is its
executor's, so a scene reset published just before START can be received just after it.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imgen_ros.core import topics
from imgen_ros.data.bag import BagError, BagTopic, bag_custom_data, bag_topics, read_bag
from imgen_ros.data.bag_episode import relative_topic

MODE_NAMES = {0: "POLICY", 1: "HUMAN", 2: "HOLD"}
SOURCE_NAMES = {0: "policy", 1: "human", 2: "replay", 3: "hold"}
EVENT_NAMES = {0: "START", 1: "SUCCESS", 2: "FAILURE", 3: "ABORT", 4: "TAKEOVER", 5: "HANDBACK", 6: "HOLD"}
TERMINAL = {1, 2, 3}
# what the summary and the plot read (the viewer mirrors and markers are not decoded)
READ_TOPICS = (topics.EPISODE_EVENTS, topics.CONTROL_STATE, topics.ROBOT_COMMAND, topics.ROBOT_STATE,
               topics.OBJECT_POSE, topics.OBJECT_POSE_TRUE, topics.OBJECT_REVEALED, topics.POSE_ERROR)


@dataclass(frozen=True)
class ObjectSample:
    t: int                        # header stamp [ns since the epoch]
    object_id: str
    position: NDArray[np.float64]
    quat_xyzw: NDArray[np.float64]

    @property
    def yaw(self) -> float:
        x, y, z, w = self.quat_xyzw
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


@dataclass
class EpisodeTimeline:
    """One episode as recorded (times: header stamps in ns since the epoch, see the module docstring)."""

    path: Path
    episode_id: int
    task: str
    outcome: str
    reason: str
    complete: bool
    t_start: int
    t_end: int
    events: list[tuple[int, str, str]]                 # (t, event name, reason), within the episode
    mode_changes: list[tuple[int, int]]                # (t, ControlState mode) at each change, from START on
    command_sources: Counter[str]                       # robot commands within the episode, by source
    tcp_t: NDArray[np.int64]                            # robot states within the episode
    tcp_xyz: NDArray[np.float64]
    believed: list[ObjectSample]                        # valid believed poses within the episode
    true: list[ObjectSample]                            # ground truth (simulation)
    reveal: ObjectSample | None                         # first valid revealed pose within the episode
    pose_error: dict[str, Any] | None                   # this episode's policy/pose_error
    custom: dict[str, str]
    topics: list[BagTopic] = field(default_factory=list)

    def seconds(self, t: int) -> float:
        return (t - self.t_start) * 1e-9

    @property
    def duration_s(self) -> float:
        return self.seconds(self.t_end)

    def mode_at(self, t: int) -> int | None:
        i = bisect.bisect_right([c[0] for c in self.mode_changes], t) - 1
        return self.mode_changes[i][1] if i >= 0 else None

    def segments(self) -> list[tuple[int, int, int]]:
        """(start, end, mode) runs of the control state within the episode."""
        out = []
        for k, (t, mode) in enumerate(self.mode_changes):
            end = self.mode_changes[k + 1][0] if k + 1 < len(self.mode_changes) else self.t_end
            out.append((max(t, self.t_start), end, mode))
        return out

    def human_segments(self) -> list[tuple[float, float]]:
        return [(self.seconds(a), self.seconds(b)) for a, b, m in self.segments() if m == 1]

    def tcp_at(self, t: int) -> NDArray[np.float64] | None:
        i = int(np.searchsorted(self.tcp_t, t, side="right")) - 1
        return self.tcp_xyz[i] if i >= 0 else None

    def object_ids(self) -> list[str]:
        return sorted({s.object_id for s in self.believed + self.true})

    def first(self, samples: list[ObjectSample], object_id: str) -> ObjectSample | None:
        """The object's first sample of the episode."""
        return next((s for s in samples if s.object_id == object_id), None)

    def measured_offset(self, object_id: str) -> NDArray[np.float64] | None:
        """Median believed - true position before the reveal (None without ground truth)."""
        true = [s for s in self.true if s.object_id == object_id]
        if not true:
            return None
        times = [s.t for s in true]
        until = self.reveal.t if self.reveal is not None else self.t_end
        diffs = []
        for b in self.believed:
            if b.object_id != object_id or b.t > until:
                continue
            i = bisect.bisect_right(times, b.t) - 1
            if i >= 0:
                diffs.append(b.position - true[i].position)
        return np.median(np.array(diffs), axis=0) if diffs else None


def _xyz(pose: Any) -> NDArray[np.float64]:
    return np.array([pose.position.x, pose.position.y, pose.position.z], float)


def _quat(pose: Any) -> NDArray[np.float64]:
    q = pose.orientation
    return np.array([q.x, q.y, q.z, q.w], float)


def _stamp_ns(msg: Any) -> int:
    header = getattr(msg, "header", None)
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec) if header is not None else 0


def _samples(items: list[tuple[int, Any]], t_start: int, t_end: int, default_id: str) -> list[ObjectSample]:
    """Valid, finite estimates within the episode; for an object with none there, the newest before."""
    valid = [ObjectSample(t, m.object_id or default_id, _xyz(m.pose), _quat(m.pose)) for t, m in items
             if m.valid and t <= t_end and np.all(np.isfinite(_xyz(m.pose))) and np.all(np.isfinite(_quat(m.pose)))]
    inside = [s for s in valid if s.t >= t_start]
    seen = {s.object_id for s in inside}
    before = {s.object_id: s for s in valid if s.t < t_start and s.object_id not in seen}
    return sorted(before.values(), key=lambda s: s.t) + inside


def load_timeline(path: str | Path) -> EpisodeTimeline:
    """Read one episode bag; BagError (one line naming the bag) if it is unreadable or holds no START."""
    path = Path(path)
    listed = bag_topics(path)
    wanted = [t.name for t in listed if relative_topic(t.name) in READ_TOPICS]
    msgs: dict[str, list[tuple[int, Any]]] = {}
    for name, items in read_bag(path, wanted).items():
        rel = relative_topic(name)
        if rel is not None:
            msgs.setdefault(rel, []).extend((_stamp_ns(m) or t, m) for t, m in items)
    for items in msgs.values():
        items.sort(key=lambda item: item[0])
    custom = bag_custom_data(path)
    events = msgs.get(topics.EPISODE_EVENTS, [])
    starts = [(t, e) for t, e in events if e.event == 0]
    if not starts:
        raise BagError(f"bag {path}: no START episode event recorded (not an episode bag?)")
    t_start, start = starts[0]
    episode_id = int(start.episode_id)
    mine = [(t, e) for t, e in events if e.episode_id == episode_id and t >= t_start]
    ends = [(t, e) for t, e in mine if e.event in TERMINAL]
    last = max((items[-1][0] for items in msgs.values() if items), default=t_start)
    if ends:
        t_end, end = ends[0]
        outcome, reason = EVENT_NAMES[end.event], end.reason
    else:
        t_end, outcome, reason = last, custom.get("imgen_outcome", "INCOMPLETE"), custom.get("imgen_reason", "")
    task = custom.get("imgen_task") or start.task

    control = msgs.get(topics.CONTROL_STATE, [])
    mode_changes: list[tuple[int, int]] = []
    before = [(t, c.mode) for t, c in control if t <= t_start]
    if before:
        mode_changes.append(before[-1])
    for t, c in control:
        if t_start < t <= t_end and (not mode_changes or mode_changes[-1][1] != c.mode):
            mode_changes.append((t, int(c.mode)))
    sources = Counter(SOURCE_NAMES.get(int(c.source), str(c.source)) for t, c in msgs.get(topics.ROBOT_COMMAND, [])
                      if t_start <= t <= t_end)
    states = [(t, s) for t, s in msgs.get(topics.ROBOT_STATE, []) if t <= t_end]
    states = [(t, s) for t, s in states if t >= t_start] or states[-1:]
    tcp_t = np.array([t for t, _ in states], dtype=np.int64)
    tcp_xyz = np.array([_xyz(s.tcp_pose) for _, s in states], float).reshape(-1, 3)
    object_id = "cube" if task == "block_grasp" else "object"
    reveals = [s for s in _samples(msgs.get(topics.OBJECT_REVEALED, []), t_start, t_end, object_id) if s.t >= t_start]
    errors = [m for _, m in msgs.get(topics.POSE_ERROR, []) if m.episode_id == episode_id]
    pose_error = None
    if errors:
        e = errors[-1]
        pose_error = {"mode": e.mode, "seed": int(e.seed),
                      "offsets_m": {oid: [float(o.x), float(o.y), float(o.z)]
                                    for oid, o in zip(e.object_ids, e.offsets, strict=False)}}
    return EpisodeTimeline(
        path=path, episode_id=episode_id, task=task, outcome=outcome, reason=reason,
        complete=custom.get("imgen_complete") == "true", t_start=t_start, t_end=t_end,
        events=[(t, EVENT_NAMES.get(e.event, str(e.event)), e.reason) for t, e in mine if t <= t_end],
        mode_changes=mode_changes, command_sources=sources, tcp_t=tcp_t, tcp_xyz=tcp_xyz,
        believed=_samples(msgs.get(topics.OBJECT_POSE, []), t_start, t_end, object_id),
        true=_samples(msgs.get(topics.OBJECT_POSE_TRUE, []), t_start, t_end, object_id),
        reveal=reveals[0] if reveals else None, pose_error=pose_error, custom=custom, topics=listed)


def _rounded(values: Any, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


def summarize_bag(path: str | Path) -> dict[str, Any]:
    """The episode summary of one bag as a JSON-ready dict (see the module docstring)."""
    tl = load_timeline(path)
    steps = dict(tl.command_sources)
    human = tl.human_segments()
    offsets = {oid: _rounded(off) for oid in tl.object_ids() if (off := tl.measured_offset(oid)) is not None}
    reveal = None
    if tl.reveal is not None:
        tcp = tl.tcp_at(tl.reveal.t)
        reveal = {"t_s": round(tl.seconds(tl.reveal.t), 3), "object_id": tl.reveal.object_id,
                  "position_m": _rounded(tl.reveal.position), "tcp_m": _rounded(tcp) if tcp is not None else None}
    return {
        "bag": str(tl.path),
        "episode_id": tl.episode_id,
        "task": tl.task,
        "outcome": tl.outcome,
        "reason": tl.reason,
        "complete": tl.complete,
        "duration_s": round(tl.duration_s, 3),
        "steps": {"total": sum(steps.values()), **steps},
        "takeovers": len(human),
        "human_segments_s": [[round(a, 3), round(b, 3)] for a, b in human],
        "human_s": round(sum(b - a for a, b in human), 3),
        "events": [[round(tl.seconds(t), 3), name, reason] for t, name, reason in tl.events],
        "corruption": {"noise": tl.custom.get("imgen_noise"), "pose_error": tl.pose_error,
                       "measured_offset_m": offsets},
        "reveal": reveal,
        "topics": [{"name": t.name, "type": t.type, "count": t.message_count,
                    "qos": [{"reliability": q.reliability, "durability": q.durability, "history": q.history,
                             "depth": q.depth} for q in t.offered_qos]} for t in tl.topics],
        "custom_data": tl.custom,
    }


def _mm(values: list[float]) -> str:
    return "(" + ", ".join(f"{1000 * v:+.1f}" for v in values) + ") mm"


def format_bag_summary(summary: dict[str, Any]) -> str:
    """The summary as the lines ``imgen bag info`` prints."""
    s = summary
    steps = s["steps"]
    parts = ", ".join(f"{k} {v}" for k, v in steps.items() if k != "total")
    lines = [
        f"bag         {s['bag']}",
        f"episode     {s['episode_id']}  task {s['task']}  outcome {s['outcome']}"
        + (f" ({s['reason']})" if s["reason"] else "") + ("" if s["complete"] else "  [incomplete recording]"),
        f"duration    {s['duration_s']:.2f} s, {steps['total']} steps" + (f" ({parts})" if parts else ""),
    ]
    segs = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in s["human_segments_s"])
    lines.append(f"takeovers   {s['takeovers']}" + (f": human {segs} ({s['human_s']:.1f} s)" if segs else ""))
    c = s["corruption"]
    corr = [f"noise {c['noise'] or '?'}"]
    if c["pose_error"] is not None:
        pe = c["pose_error"]
        offs = ", ".join(f"{oid} {_mm(v)}" for oid, v in pe["offsets_m"].items())
        corr.append(f"policy/pose_error mode {pe['mode']} seed {pe['seed']}" + (f" offset {offs}" if offs else ""))
    if c["measured_offset_m"]:
        corr.append("believed - true " + ", ".join(f"{oid} {_mm(v)}" for oid, v in c["measured_offset_m"].items()))
    lines.append("corruption  " + "; ".join(corr))
    r = s["reveal"]
    if r is None:
        lines.append("reveal      none")
    else:
        tcp = f", TCP ({', '.join(f'{v:.3f}' for v in r['tcp_m'])}) m" if r["tcp_m"] else ""
        lines.append(f"reveal      at {r['t_s']:.2f} s ({r['object_id']}){tcp}")
    lines.append(f"topics      {len(s['topics'])}")
    width = max((len(t["name"]) for t in s["topics"]), default=0)
    twidth = max((len(t["type"]) for t in s["topics"]), default=0)
    for t in s["topics"]:
        q = " | ".join(dict.fromkeys(f"{p['reliability']} {p['durability']} {p['history']} {p['depth']}"
                                     for p in t["qos"])) or "no QoS recorded"
        lines.append(f"  {t['name']:<{width}}  {t['type']:<{twidth}}  {t['count']:>6}  {q}")
    return "\n".join(lines)
