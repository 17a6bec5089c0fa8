"""Read an offline W&B run from its files, without network, login or the wandb service.

An offline run directory ``wandb/offline-run-<time>-<id>/`` holds ``run-<id>.wandb``: a LevelDB
style log (https://github.com/google/leveldb/blob/main/doc/log_format.md) of wandb's protobuf
``Record`` messages behind a 7-byte header (``:W&B``, magic, version). The run's summary is not
stored as a file offline; it is the result of applying the log's summary records in order.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from str_lightning.runs.directory import RunDirectory

_FILE_HEADER = 7
_BLOCK = 32768
_RECORD_HEADER = struct.Struct("<IHB")  # crc32 of (type byte + data), data length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


class WandbFileError(ValueError):
    """A ``.wandb`` file that is not a readable W&B log."""


def _chunks(raw: bytes, path: Path) -> Iterator[tuple[int, bytes]]:
    position = _FILE_HEADER
    while position + _RECORD_HEADER.size <= len(raw):
        left_in_block = _BLOCK - position % _BLOCK
        if left_in_block < _RECORD_HEADER.size:  # block trailer: zero padding
            position += left_in_block
            continue
        checksum, length, kind = _RECORD_HEADER.unpack_from(raw, position)
        if kind == 0 and length == 0:  # preallocated, never written
            return
        data = raw[position + _RECORD_HEADER.size:position + _RECORD_HEADER.size + length]
        if zlib.crc32(bytes([kind]) + data) != checksum or len(data) != length:
            raise WandbFileError(f"{path}: corrupt record at byte {position}")
        yield kind, data
        position += _RECORD_HEADER.size + length


def read_records(path: str | Path) -> Iterator[Any]:
    """The ``wandb_internal_pb2.Record`` messages of a ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    path = Path(path)
    raw = path.read_bytes()
    if raw[:4] != b":W&B":
        raise WandbFileError(f"{path}: not a W&B run log (header {raw[:4]!r}, expected b':W&B')")
    pieces: list[bytes] = []
    for kind, data in _chunks(raw, path):
        pieces.append(data)
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(pieces))
            pieces = []
            yield record


def _set_nested(target: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def _remove_nested(target: dict, keys: list[str]) -> None:
    for key in keys[:-1]:
        target = target.get(key, {})
    target.pop(keys[-1], None)


def read_run(path: str | Path) -> dict[str, Any]:
    """``summary``, ``config`` (values as logged), ``name``, ``group``, ``job_type``, ``project``,
    ``tags`` and ``id`` of the run logged in the ``.wandb`` file ``path``."""
    summary: dict[str, Any] = {}
    config: dict[str, Any] = {}
    run: dict[str, Any] = {}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = {"id": record.run.run_id, "name": record.run.display_name,
                   "group": record.run.run_group, "job_type": record.run.job_type,
                   "project": record.run.project,
                   "tags": list(record.run.tags)}
            for item in record.run.config.update:
                config[item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                _set_nested(config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "summary":
            for item in record.summary.update:
                _set_nested(summary, list(item.nested_key) or [item.key], json.loads(item.value_json))
            for item in record.summary.remove:
                _remove_nested(summary, list(item.nested_key) or [item.key])
    return {**run, "summary": summary, "config": config}


def offline_run_files(run_dir: str | Path) -> list[Path]:
    """The ``.wandb`` files of the offline runs under ``<run_dir>/wandb``, oldest first (by the
    start time in the directory name)."""
    runs = sorted(RunDirectory(run_dir).wandb_dir.glob("offline-run-*"))
    return [file for run in runs for file in sorted(run.glob("run-*.wandb"))]
