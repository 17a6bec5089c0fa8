"""Encoding: a clip <-> its tar members (``meta.json`` and ``<name>.npy``) and its tar key."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from datamodules.schema.errors import ClipError
from datamodules.schema.validation import ARRAY_MEMBERS

TAR_BLOCK = 512  # tar block size: members start and end on multiples of it


def sample_key(meta: Mapping[str, Any]) -> str:
    """The tar key of a clip: ``<video>__<start:06d>`` with characters outside [A-Za-z0-9_-]
    replaced by '_' (WebDataset splits names at the first dot)."""
    video = re.sub(r"[^A-Za-z0-9_-]", "_", meta["video"])
    return f"{video}__{meta['start']:06d}"


def encode_clip(clip: Mapping[str, Any]) -> dict[str, bytes]:
    """Tar members (suffix -> bytes) of a validated clip."""
    members = {"meta.json": json.dumps(clip["meta"], sort_keys=True).encode("utf-8")}
    for name, array in clip.items():
        if name in ARRAY_MEMBERS:
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            members[f"{name}.npy"] = buffer.getvalue()
    return members


def decode_members(members: Mapping[str, bytes], where: str) -> dict[str, Any]:
    """Clip dict from raw tar members (suffix -> bytes); unknown suffixes are a ClipError."""
    clip: dict[str, Any] = {}
    for suffix, data in members.items():
        if suffix.startswith("__"):
            continue
        name, _, extension = suffix.partition(".")
        try:
            if suffix == "meta.json":
                clip["meta"] = json.loads(data)
            elif extension == "npy" and name in ARRAY_MEMBERS:
                clip[name] = np.load(io.BytesIO(data), allow_pickle=False)
            else:
                raise ClipError(f"{where}: unexpected member {suffix!r}; allowed: meta.json, "
                                f"{', '.join(n + '.npy' for n in ARRAY_MEMBERS)}")
        except (ValueError, OSError, EOFError) as err:
            if isinstance(err, ClipError):
                raise
            raise ClipError(f"{where}: member {suffix!r}: cannot decode ({err})") from err
    return clip

