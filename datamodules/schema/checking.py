"""Checking: every problem of a shard against its manifest and the schema, cheap checks first."""

from __future__ import annotations

from collections.abc import Iterator

from datamodules.schema.errors import DataError
from datamodules.schema.indexing import recount_shard
from datamodules.schema.manifest import Manifest, ShardEntry, checksum_mismatch
from datamodules.schema.reading import decode_sample, shard_samples


def shard_problems(manifest: Manifest, shard: ShardEntry) -> Iterator[str]:
    """One message per problem of a shard: the archive is complete and its counts are the
    manifest's (recounted from the shard), the checksum, then every sample."""
    try:
        recount_shard(manifest, shard)
        counted = True
    except DataError as err:
        yield str(err)
        counted = False
    mismatch = checksum_mismatch(manifest, shard)
    if mismatch:
        yield mismatch
    if not counted:
        return  # a cut or miscounted shard: decoding it would only repeat the problem
    try:
        for sample in shard_samples(manifest, shard):
            try:
                decode_sample(sample, manifest.feature_dim)
            except DataError as err:
                yield str(err)
    except DataError as err:
        yield str(err)
