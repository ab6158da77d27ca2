"""Append-only, crash-tolerant log of finished generation attempts (``<out>.journal``).

Each record is ``[8-byte length][4-byte crc32][payload]`` written with one ``write`` and a
flush, so a process killed (even with SIGKILL) at any moment leaves a log whose records are all
intact except possibly a torn last one, which :func:`read_journal` detects and drops. The first
record is a header with the generation config and the content fingerprints (size, sha256) of the
run's input files (source dataset, policy checkpoint); a rerun with a different config, or whose
inputs changed on disk, is refused (``imgen_ros.datagen.runner``).
(Flushing is enough for process crashes; the OS keeps the written pages. It is not a guard against
power loss, which would need fsync.)

Payloads are never unpickled (a planted journal could run code on resume): a payload is
``b"J1"``, the 4-byte length of a JSON document, the JSON, then an ``.npz`` of the record's numpy
arrays, loaded with ``allow_pickle=False``. The JSON holds plain scalars and strings as themselves
and everything else tagged: ``["d", {...}]`` dict, ``["l", [...]]`` list, ``["t", [...]]`` tuple,
``["a", i]`` array ``i`` of the npz, ``["s", i]`` numpy scalar, ``["c", name, {...}]`` one of the
dataclasses :data:`RECORD_CLASSES` (attempt results and their episodes). A journal of an older
imgen (pickle payloads) is refused (:class:`JournalError`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_HEADER = struct.Struct("<QI")
_MAGIC = b"J1"
_JSON_LEN = struct.Struct("<I")
RECORD_CLASSES = ("AttemptResult", "Episode")


class JournalError(ValueError):
    """A journal record that is intact (its checksum matches) but not a record this imgen reads."""


def _classes() -> dict[str, type]:
    from imgen_ros.data.episode import Episode
    from imgen_ros.datagen.episodes import AttemptResult

    return {"AttemptResult": AttemptResult, "Episode": Episode}


def _encode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.hasobject:
            raise TypeError(f"journal records cannot hold object arrays ({value.dtype})")
        arrays.append(np.asarray(value))
        return ["a" if isinstance(value, np.ndarray) else "s", len(arrays) - 1]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("journal record dicts need string keys")
        return ["d", {k: _encode(v, arrays) for k, v in value.items()}]
    if isinstance(value, (list, tuple)):
        return ["l" if isinstance(value, list) else "t", [_encode(v, arrays) for v in value]]
    name = type(value).__name__
    if dataclasses.is_dataclass(value) and name in RECORD_CLASSES:
        return ["c", name, {f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value)}]
    raise TypeError(f"journal records cannot hold {name}")


def _decode(value: Any, arrays: Any, classes: dict[str, type]) -> Any:
    if not isinstance(value, list):
        return value
    tag, body = value[0], value[-1]
    if tag == "d":
        return {k: _decode(v, arrays, classes) for k, v in body.items()}
    if tag in ("l", "t"):
        items = [_decode(v, arrays, classes) for v in body]
        return items if tag == "l" else tuple(items)
    if tag in ("a", "s"):
        array = arrays[f"a{int(body)}"]
        return array if tag == "a" else array[()]
    if tag == "c":
        return classes[value[1]](**{k: _decode(v, arrays, classes) for k, v in body.items()})
    raise ValueError(f"unknown tag {tag!r}")


def encode_record(record: Any) -> bytes:
    """The journal payload of ``record`` (TypeError for what a journal cannot hold)."""
    arrays: list[np.ndarray] = []
    doc = json.dumps(_encode(record, arrays)).encode()
    blob = io.BytesIO()
    if arrays:
        np.savez(blob, **{f"a{i}": a for i, a in enumerate(arrays)})  # no object arrays: nothing pickled
    return _MAGIC + _JSON_LEN.pack(len(doc)) + doc + blob.getvalue()


def _split(payload: bytes) -> tuple[Any, bytes]:
    """A payload's JSON document (decoded) and the npz bytes after it (ValueError/struct.error if malformed)."""
    if not payload.startswith(_MAGIC):
        raise ValueError("no journal record marker")
    start = len(_MAGIC) + _JSON_LEN.size
    (n,) = _JSON_LEN.unpack_from(payload, len(_MAGIC))
    return json.loads(payload[start:start + n]), payload[start + n:]


def decode_record(payload: bytes, where: str = "journal record") -> Any:
    """The record in ``payload``; JournalError if it is not one (never unpickles)."""
    if payload[:1] == b"\x80":
        raise JournalError(f"{where} is in the pickle format of an older imgen, which is no longer read (a planted "
                           "file could run code)")
    try:
        doc, rest = _split(payload)
        arrays = np.load(io.BytesIO(rest), allow_pickle=False) if rest else {}
        return _decode(doc, arrays, _classes())
    except Exception as exc:  # whatever a foreign payload makes json/numpy/the dataclasses raise
        first = (str(exc).splitlines() or [""])[0]
        raise JournalError(f"{where} is not a valid journal record ({type(exc).__name__}: {first})") from None


def journal_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".journal")


def _intact_payloads(path: Path) -> Iterator[tuple[bytes, int]]:
    """Each intact record's payload and the byte offset just after it, up to a torn or corrupt one."""
    blob = path.read_bytes()
    pos = 0
    while pos + _HEADER.size <= len(blob):
        length, crc = _HEADER.unpack_from(blob, pos)
        payload = blob[pos + _HEADER.size: pos + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        pos += _HEADER.size + length
        yield payload, pos


def read_journal(path: str | Path) -> tuple[list[Any], int]:
    """All intact records, and the byte length of the intact prefix (where appending resumes).

    JournalError if an intact record cannot be decoded (an old pickle journal, or a foreign file)."""
    path = Path(path)
    if not path.exists():
        return [], 0
    records: list[Any] = []
    valid_bytes = 0
    for payload, end in _intact_payloads(path):
        records.append(decode_record(payload, f"{path}: record {len(records)}"))
        valid_bytes = end
    return records, valid_bytes


def journal_counts(path: str | Path) -> tuple[int, int]:
    """(attempts, kept episodes) journaled so far, read from the records' JSON alone: no arrays are
    decoded, so it is cheap enough to poll during a long run. JournalError as :func:`read_journal`."""
    path = Path(path)
    if not path.exists():
        return 0, 0
    attempts = kept = 0
    for index, (payload, _) in enumerate(_intact_payloads(path)):
        if index == 0:
            decode_record(payload, f"{path}: record 0")  # the header: refuse what is not a journal of ours
            continue
        try:
            doc, _ = _split(payload)
            fields = doc[2] if doc[:2] == ["c", "AttemptResult"] else None
        except (struct.error, ValueError, TypeError, IndexError):
            fields = None
        if not isinstance(fields, dict):
            raise JournalError(f"{path}: record {index} is not a generation attempt")
        attempts += 1
        kept += fields.get("episode") is not None
    return attempts, kept


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
        payload = encode_record(record)
        self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
