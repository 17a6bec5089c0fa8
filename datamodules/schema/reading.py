"""Reading: the clips of a split directory, whole shards in tar order or one clip by its span."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from webdataset.tariterators import tarfile_samples

from datamodules.schema.archive import END_MARKER
from datamodules.schema.encoding import decode_members
from datamodules.schema.errors import ShardError
from datamodules.schema.manifest import ClipEntry, Manifest, ShardEntry, read_manifest
from datamodules.schema.validation import validate_clip


def raw_samples(shard: Path) -> Iterator[dict[str, Any]]:
    """Raw WebDataset samples (``__key__`` + suffix -> bytes) of one shard, in tar order.

    A tar that cannot be read (truncated, corrupt, missing) is a ``ShardError`` naming the shard
    and the last sample read whole.
    """
    last_key = None
    try:
        for sample in tarfile_samples([{"url": str(shard)}]):
            last_key = sample["__key__"]
            yield sample
    except (tarfile.TarError, OSError, EOFError, ValueError) as err:
        after = f"after sample {last_key!r}" if last_key else "before the first sample"
        raise ShardError(f"shard {shard}: unreadable tar {after} ({type(err).__name__}: "
                         f"{err.args[0] if err.args else err})") from err


def shard_samples(manifest: Manifest, shard: ShardEntry) -> Iterator[dict[str, Any]]:
    """``raw_samples`` of a manifest's shard, checked against the manifest as they are read.

    Before the first sample: the file must hold the manifest's clip spans and the end-of-archive
    marker after them (cheap: one ``stat``; a tar cut at a member boundary otherwise reads as a
    short one). While reading: the keys must be the manifest's, in order, and as many.
    """
    path = manifest.shard_path(shard)
    needed = max((c.offset + c.nbytes for c in shard.clips), default=0) + END_MARKER
    size = path.stat().st_size
    if size < needed:
        raise ShardError(f"shard {path}: truncated: expected at least {needed} bytes (the "
                         f"manifest's clip spans and the end-of-archive marker), got {size}; "
                         "re-copy or rewrite the shard, then run `str-lightning data index`")
    expected = [c.key for c in shard.clips]
    keys: list[str] = []
    for sample in raw_samples(path):
        keys.append(sample["__key__"])
        if keys[-1] != (expected[len(keys) - 1] if len(keys) <= len(expected) else None):
            check_shard_keys(shard, keys)
        yield sample
    check_shard_keys(shard, keys)


def decode_sample(sample: Mapping[str, Any], feature_dim: int | None = None,
                  validate: bool = True) -> dict[str, Any]:
    """Clip dict (plus ``__key__`` and ``__shard__``) of a raw sample, validated when asked."""
    shard = Path(sample.get("__url__", "?")).name
    where = f"shard {shard}, sample {sample['__key__']!r}"
    clip = decode_members(sample, where)
    if validate:
        validate_clip(clip, where, feature_dim)
    clip["__key__"], clip["__shard__"] = sample["__key__"], shard
    return clip


def iterate_clips(directory: str | os.PathLike, validate: bool = True) -> Iterator[dict[str, Any]]:
    """Every clip of a split directory, shard by shard in manifest order.

    Each clip is the dict that was written plus ``__key__`` and ``__shard__``. Each shard's keys
    are checked against the manifest (``shard_samples``); with ``validate`` every clip is also
    checked against the schema and the manifest's feature dim.
    """
    manifest = read_manifest(directory)
    for shard in manifest.shards:
        for sample in shard_samples(manifest, shard):
            yield decode_sample(sample, manifest.feature_dim, validate)


def check_shard_keys(shard: ShardEntry, keys: list[str]) -> None:
    """``ShardError`` unless ``keys`` are exactly the manifest's clips of the shard, in order
    (called with the keys read so far, it names the first one that differs)."""
    expected = [c.key for c in shard.clips]
    if keys != expected:
        missing = [k for k in expected if k not in set(keys)]
        differs = next((i for i, (a, b) in enumerate(zip(keys, expected)) if a != b), None)
        found = (f"sample {differs} is {keys[differs]!r}, the manifest lists "
                 f"{expected[differs]!r}" if differs is not None else
                 f"{len(keys)} samples (missing: {missing[:5]})")
        raise ShardError(f"shard {shard.name}: expected the {len(expected)} samples listed in "
                         f"the manifest, got {found}: truncated or rewritten after indexing? "
                         "Run `str-lightning data check` on its directory")


def read_clip(manifest: Manifest, shard: ShardEntry, entry: ClipEntry,
              validate: bool = True) -> dict[str, Any]:
    """One clip read by its byte span (no scan of the shard)."""
    path = manifest.shard_path(shard)
    with open(path, "rb") as stream:
        stream.seek(entry.offset)
        data = stream.read(entry.nbytes)
    if len(data) != entry.nbytes:
        raise ShardError(f"shard {path}, sample {entry.key!r}: truncated: expected bytes "
                         f"{entry.offset}+{entry.nbytes} as the manifest lists, the file ends "
                         f"{len(data)} bytes after {entry.offset}; the file changed after it was "
                         f"indexed: run `str-lightning data check {manifest.directory}`")
    members: dict[str, Any] = {"__key__": entry.key, "__url__": str(path)}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
            for info in tar:
                key, _, suffix = info.name.partition(".")
                if key != entry.key:
                    raise ShardError(f"shard {path}: bytes {entry.offset}+{entry.nbytes} "
                                     f"hold {info.name!r}, expected members of {entry.key!r} "
                                     f"(manifest out of date?)")
                members[suffix] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError) as err:
        raise ShardError(f"shard {path}, sample {entry.key!r}: unreadable bytes "
                         f"{entry.offset}+{entry.nbytes} ({err}); the file changed after it was "
                         f"indexed: run `str-lightning data check {manifest.directory}`") from err
    clip = decode_sample(members, manifest.feature_dim, validate)
    check_clip_frames(clip, entry)
    return clip


def check_clip_frames(clip: Mapping[str, Any], entry: ClipEntry) -> None:
    """``ShardError`` unless a decoded clip has the frame count its manifest entry lists."""
    frames = len(clip["valid"]) if "valid" in clip else None
    if frames != entry.frames:
        raise ShardError(f"shard {clip['__shard__']}, sample {entry.key!r}: expected {entry.frames} "
                         f"frames as the manifest lists, got {frames}: the manifest is out of date "
                         "or edited; run `str-lightning data index` on its directory")

