"""The recorder's bag writer (``data.bag.EpisodeBagWriter``): CPU per closed chunk and per message.

    scripts/with-env python bench/bench_recorder.py [--chunks 20] [--rate 20]

Every ``chunk_s`` (1 s by default) the recorder closes a chunk: rosbags finalizes the MCAP file and
writes its metadata.yaml, and the bag's own metadata.yaml is re-read and rewritten. Each chunk here
holds one second of the graph's recorded topics (``RECORDED_TOPICS``, each at ``--rate`` Hz, payloads
of a RobotState's size), so "CPU per chunk" is the share of one core the recorder's writing takes at
chunk_s = 1 s. Printed: which YAML backends are in use (libyaml for PyYAML, ruamel.yaml.clib for the
ruamel.yaml inside rosbags), CPU time (``time.process_time``) per chunk and per message.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import yaml
from imgen_ros.data.bag import RECORDED_TOPICS, EpisodeBagWriter, bag_info, typestore

PAYLOAD = b"\x00\x01\x00\x00" + bytes(300)   # CDR header + about a RobotState's size


def backends() -> str:
    try:
        import _ruamel_yaml  # noqa: F401
        ruamel = "ruamel.yaml.clib (C emitter)"
    except ImportError:
        ruamel = "pure Python (no ruamel.yaml.clib)"
    pyyaml = "libyaml" if getattr(yaml, "__with_libyaml__", False) else "pure Python"
    return f"PyYAML: {pyyaml}; ruamel.yaml (inside rosbags): {ruamel}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second per topic")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}; {backends()}")
    typestore()   # parsed once per process, as in the recorder
    names = {"/" + t: ty for t, ty in RECORDED_TOPICS.items()}
    per_chunk = max(1, round(args.rate))
    with tempfile.TemporaryDirectory() as tmp:
        writer = EpisodeBagWriter(Path(tmp) / "bag", names)
        write_s = flush_s = 0.0
        stamp = 1_800_000_000 * 10**9
        for _ in range(args.chunks):
            t0 = time.process_time()
            for _ in range(per_chunk):
                for topic in names:
                    writer.write(topic, stamp, PAYLOAD)
                    stamp += 1000
            t1 = time.process_time()
            writer.flush()
            t2 = time.process_time()
            write_s, flush_s = write_s + t1 - t0, flush_s + t2 - t1
        writer.close({"imgen_complete": "true"})
        messages = writer.messages_written
        count = bag_info(writer.path)["message_count"]
    assert count == messages, (count, messages)
    n = args.chunks
    print(f"{n} chunks of {per_chunk * len(names)} messages ({len(names)} topics x {per_chunk}): "
          f"CPU per chunk {1e3 * (write_s + flush_s) / n:.1f} ms (writing {1e3 * write_s / n:.1f} ms, "
          f"closing {1e3 * flush_s / n:.1f} ms); per message {1e6 * write_s / messages:.0f} us")
    print(f"at chunk_s = 1 s: {100 * (write_s + flush_s) / n:.0f} % of one core for the bag writer alone")


if __name__ == "__main__":
    main()
