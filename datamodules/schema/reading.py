"""Reading: the clips of a split directory, whole shards in tar order or one clip by its span."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from webdataset.tariterators import tarfile_samples

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
    """``raw_samples`` of a manifest's shard, after checking that the file is not shorter than
    the manifest's clip spans (a tar cut at a member boundary otherwise reads as a short one)."""
    path = manifest.shard_path(shard)
    needed = max((c.offset + c.nbytes for c in shard.clips), default=0)
    size = path.stat().st_size
    if size < needed:
        raise ShardError(f"shard {path}: truncated: expected at least {needed} bytes as the "
                         f"manifest's clips span, got {size}")
    return raw_samples(path)


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

    Each clip is the dict that was written plus ``__key__`` and ``__shard__``. With ``validate``
    every clip is checked against the schema and the manifest's feature dim, and each shard's
    keys against the manifest (a shard cut short at a sample boundary is caught there).
    """
    manifest = read_manifest(directory)
    for shard in manifest.shards:
        keys = []
        for sample in shard_samples(manifest, shard):
            keys.append(sample["__key__"])
            yield decode_sample(sample, manifest.feature_dim, validate)
        if validate:
            check_shard_keys(shard, keys)


def check_shard_keys(shard: ShardEntry, keys: list[str]) -> None:
    """``ShardError`` unless a shard holds exactly the manifest's clips in order."""
    expected = [c.key for c in shard.clips]
    if keys != expected:
        missing = [k for k in expected if k not in set(keys)]
        raise ShardError(f"shard {shard.name}: expected {len(expected)} samples as listed in the "
                         f"manifest, got {len(keys)} (missing: {missing[:5]}; truncated or "
                         f"rewritten after indexing?)")


def read_clip(manifest: Manifest, shard: ShardEntry, entry: ClipEntry,
              validate: bool = True) -> dict[str, Any]:
    """One clip read by its byte span (no scan of the shard)."""
    path = manifest.shard_path(shard)
    with open(path, "rb") as stream:
        stream.seek(entry.offset)
        data = stream.read(entry.nbytes)
    members: dict[str, Any] = {"__key__": entry.key, "__url__": str(path)}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
            for info in tar:
                key, _, suffix = info.name.partition(".")
                if key != entry.key:
                    raise ShardError(f"shard {shard.name}: bytes {entry.offset}+{entry.nbytes} "
                                     f"hold {info.name!r}, expected members of {entry.key!r} "
                                     f"(manifest out of date?)")
                members[suffix] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError) as err:
        raise ShardError(f"shard {shard.name}, sample {entry.key!r}: unreadable bytes "
                         f"{entry.offset}+{entry.nbytes} ({err})") from err
    return decode_sample(members, manifest.feature_dim, validate)

