"""The manifest: ``manifest.json`` of a split directory, its dataclasses, reading and writing."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datamodules.schema.errors import ShardError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ClipEntry:
    """One clip of a shard: its tar key, frame count and the byte span of its members."""

    key: str
    frames: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class ShardEntry:
    name: str
    samples: int
    frames: int
    sha256: str
    clips: tuple[ClipEntry, ...]


@dataclass(frozen=True)
class Manifest:
    """Contents of a split directory's ``manifest.json`` (``directory`` is where it was read)."""

    directory: Path
    dataset: str
    split: str
    kind: str
    feature_dim: int | None
    feature_dtype: str | None
    joints3d: str
    shards: tuple[ShardEntry, ...]
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.shards)

    def shard_path(self, shard: ShardEntry) -> Path:
        return self.directory / shard.name

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version, "dataset": self.dataset, "split": self.split,
            "kind": self.kind, "feature_dim": self.feature_dim,
            "feature_dtype": self.feature_dtype, "joints3d": self.joints3d,
            "samples": self.samples, "frames": self.frames, **self.extra,
            "shards": [{"name": s.name, "samples": s.samples, "frames": s.frames,
                        "sha256": s.sha256,
                        "clips": [[c.key, c.frames, c.offset, c.nbytes] for c in s.clips]}
                       for s in self.shards],
        }


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """Read and check ``directory/manifest.json``: schema version, fields, counts that add up
    (each shard's ``samples``/``frames`` are its clips', the totals the shards'), listed shards
    exist. Whether the counts are the shards' own is ``str-lightning data check``'s job."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; run `str-lightning data index {directory}`")
    try:
        data = json.loads(path.read_text())
        if data["schema_version"] != SCHEMA_VERSION:
            raise ShardError(f"{path}: schema_version: expected {SCHEMA_VERSION}, got "
                             f"{data['schema_version']!r}")
        shards = tuple(
            ShardEntry(s["name"], s["samples"], s["frames"], s["sha256"],
                       tuple(ClipEntry(*c) for c in s["clips"]))
            for s in data["shards"])
        known = {"schema_version", "dataset", "split", "kind", "feature_dim", "feature_dtype",
                 "joints3d", "samples", "frames", "shards"}
        manifest = Manifest(directory, data["dataset"], data["split"], data["kind"],
                            data["feature_dim"], data["feature_dtype"], data["joints3d"], shards,
                            extra={k: v for k, v in data.items() if k not in known})
        _check_totals(manifest, data, path)
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ShardError(f"{path}: malformed manifest ({type(err).__name__}: {err})") from err
    for shard in shards:
        if not manifest.shard_path(shard).is_file():
            raise FileNotFoundError(f"{path}: lists shard {shard.name}, which does not exist")
    return manifest


def _check_totals(manifest: Manifest, data: dict[str, Any], path: Path) -> None:
    """``ShardError`` when a count of the manifest is not the sum of what it lists."""
    sums = [(f"shard {s.name}: samples", s.samples, len(s.clips)) for s in manifest.shards]
    sums += [(f"shard {s.name}: frames", s.frames, sum(c.frames for c in s.clips))
             for s in manifest.shards]
    sums += [("samples", data["samples"], manifest.samples),
             ("frames", data["frames"], manifest.frames)]
    for name, listed, total in sums:
        if listed != total:
            raise ShardError(f"{path}: {name} is {listed!r}, but what it lists adds up to "
                             f"{total}: the manifest was edited or is corrupt; run "
                             f"`str-lightning data index {manifest.directory}` to rebuild it")


def write_manifest(manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically (temporary file + rename)."""
    path = manifest.directory / MANIFEST_NAME
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest.to_json(), indent=1) + "\n")
    temporary.replace(path)
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_mismatch(manifest: Manifest, shard: ShardEntry) -> str | None:
    """What is wrong with a shard's sha256 (None when it is the one its manifest lists)."""
    actual = file_sha256(manifest.shard_path(shard))
    if actual == shard.sha256:
        return None
    return (f"shard {manifest.shard_path(shard)}: sha256 expected {shard.sha256} (as "
            f"{MANIFEST_NAME} lists), got {actual}")


def verify_checksums(manifest: Manifest) -> None:
    """Raise ``ShardError`` naming every shard of the split whose bytes are not the bytes that
    were indexed (a torn copy, flipped bits, an edit): reading such a shard could give wrong
    numbers without any other error."""
    mismatches = [m for shard in manifest.shards if (m := checksum_mismatch(manifest, shard))]
    if mismatches:
        raise ShardError("\n".join(mismatches) + "\nThe shards changed after they were "
                         "indexed: copy them again from their source (or rewrite them), then "
                         f"check the split with `str-lightning data check {manifest.directory}`")
