"""Append-only, crash-tolerant log of finished generation attempts (``<out>.journal``).

Each record is ``[8-byte length][4-byte crc32][pickle payload]`` written with one ``write`` and a
flush, so a process killed (even with SIGKILL) at any moment leaves a log whose records are all
intact except possibly a torn last one, which :func:`read_journal` detects and drops. The first
record is a header with the generation config and the content fingerprints (size, sha256) of the
run's input files (source dataset, policy checkpoint); a rerun with a different config, or whose
inputs changed on disk, is refused (``imgen_ros.datagen.runner``).
(Flushing is enough for process crashes; the OS keeps the written pages. It is not a guard against
power loss, which would need fsync.)
"""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<QI")


def journal_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".journal")


def read_journal(path: str | Path) -> tuple[list[Any], int]:
    """All intact records, and the byte length of the intact prefix (where appending resumes)."""
    path = Path(path)
    if not path.exists():
        return [], 0
    blob = path.read_bytes()
    records: list[Any] = []
    pos = 0
    while pos + _HEADER.size <= len(blob):
        length, crc = _HEADER.unpack_from(blob, pos)
        payload = blob[pos + _HEADER.size: pos + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            records.append(pickle.loads(payload))
        except Exception:
            break
        pos += _HEADER.size + length
    return records, pos


class JournalWriter:
    """Appends records after the intact prefix ``valid_bytes`` of an existing journal (truncating a torn tail)."""

    def __init__(self, path: str | Path, valid_bytes: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = "r+b" if self.path.exists() else "wb"
        self._file = open(self.path, mode)
        self._file.truncate(valid_bytes)
        self._file.seek(valid_bytes)

    def append(self, record: Any) -> None:
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
