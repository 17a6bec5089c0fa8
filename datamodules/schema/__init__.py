"""The clip-shard schema (described for humans in docs/data.md).

One sample of a WebDataset tar shard is one clip: consecutive frames of one person track. A clip
is a plain dict ``{"meta": dict, "features": (L, D), "kp2d": ..., ...}``; its members are stored
as ``<key>.meta.json`` and ``<key>.<name>.npy``. Every split directory holds shards
``{split}-{index:06d}.tar`` and a ``manifest.json`` that lists, per shard, its sample and frame
counts, its sha256 and every clip as ``[key, frames, offset, nbytes]`` (the byte span of the
clip's tar members, so one clip can be read without reading the shard).

This package is the single implementation of the schema, one job per module: ``validation``
(``validate_clip``, used when writing and when reading), ``encoding`` (clip <-> tar members),
``manifest`` (``read_manifest``, ``write_manifest``), ``writing`` (``ShardWriter``), ``archive``
(is a shard's tar complete), ``checking`` (``shard_problems``: a shard against its manifest
and the schema), ``reading`` (``iterate_clips``, ``read_clip``) and ``indexing``
(``build_manifest`` for shards written by any other tool, ``recount_shard``). Errors are ``ClipError`` (a bad clip: names the clip or shard + sample, the member,
expected and actual) and ``ShardError`` (an unreadable shard, a checksum or manifest mismatch).
Import the public names from here: ``from datamodules.schema import ShardWriter``.
"""

from datamodules.schema.archive import complete_members
from datamodules.schema.checking import shard_problems
from datamodules.schema.encoding import decode_members, encode_clip, sample_key
from datamodules.schema.errors import ClipError, DataError, ShardError
from datamodules.schema.indexing import build_manifest, index_shard, recount_shard
from datamodules.schema.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    ClipEntry,
    Manifest,
    ShardEntry,
    checksum_mismatch,
    file_sha256,
    read_manifest,
    verify_checksums,
    write_manifest,
)
from datamodules.schema.reading import (
    check_clip_frames,
    check_shard_keys,
    decode_sample,
    iterate_clips,
    raw_samples,
    read_clip,
    shard_samples,
)
from datamodules.schema.validation import (
    ARRAY_MEMBERS,
    FEATURE_DTYPES,
    KINDS,
    META_FIELDS,
    SUPERVISION_FLAGS,
    required_members,
    validate_clip,
    validate_meta,
)
from datamodules.schema.writing import ShardWriter

__all__ = [
    "ARRAY_MEMBERS", "FEATURE_DTYPES", "KINDS", "MANIFEST_NAME", "META_FIELDS", "SCHEMA_VERSION",
    "SUPERVISION_FLAGS", "ClipEntry", "ClipError", "DataError", "Manifest", "ShardEntry",
    "ShardError", "ShardWriter", "build_manifest", "check_clip_frames", "check_shard_keys",
    "checksum_mismatch",
    "complete_members", "decode_members", "decode_sample", "encode_clip", "file_sha256",
    "index_shard", "iterate_clips", "raw_samples", "read_clip", "read_manifest", "recount_shard",
    "required_members", "sample_key", "shard_problems", "shard_samples", "validate_clip", "validate_meta",
    "verify_checksums", "write_manifest",
]
