"""Indexing: a manifest for shards written by any tool (``str-lightning data index``)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.schema.archive import complete_members, padded_end
from datamodules.schema.errors import ClipError, ShardError
from datamodules.schema.manifest import (
    ClipEntry,
    Manifest,
    ShardEntry,
    file_sha256,
    write_manifest,
)
from datamodules.schema.validation import SplitProperties, validate_meta


def index_shard(path: Path) -> tuple[list[ClipEntry], list[dict[str, Any]]]:
    """Clip entries and decoded metas/feature shapes of one shard written by any tool.

    Checks first that the tar is complete (``complete_members``), then reads it with random
    access (member offsets); decodes only ``meta.json``, ``valid.npy`` and the header of
    ``features.npy``. Members of one key must be contiguous (WebDataset rule).
    """
    entries: list[ClipEntry] = []
    infos: list[dict[str, Any]] = []
    groups = _sample_groups(complete_members(path), path)
    try:
        with tarfile.open(path, mode="r:") as tar:
            for key, members in groups:
                info = _index_members(tar, key, members, path)
                entries.append(ClipEntry(key, info["frames"], members[0].offset,
                                         padded_end(members[-1]) - members[0].offset))
                infos.append(info)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ShardError(f"shard {path}: unreadable tar ({type(err).__name__}: {err})") from err
    return entries, infos


def _sample_groups(members: list[tarfile.TarInfo],
                   path: Path) -> list[tuple[str, list[tarfile.TarInfo]]]:
    """Members grouped by sample key, in tar order; a key's members must be contiguous."""
    groups: list[tuple[str, list[tarfile.TarInfo]]] = []
    for info in members:
        key, _, _ = info.name.partition(".")
        if groups and groups[-1][0] == key:
            groups[-1][1].append(info)
        elif any(k == key for k, _ in groups):
            raise ShardError(f"shard {path}: members of sample {key!r} are not contiguous")
        else:
            groups.append((key, [info]))
    return groups


def _index_members(tar: tarfile.TarFile, key: str, members: list[tarfile.TarInfo],
                   path: Path) -> dict[str, Any]:
    where = f"shard {path.name}, sample {key!r}"
    by_suffix = {m.name.partition(".")[2]: m for m in members}
    for needed in ("meta.json", "valid.npy"):
        if needed not in by_suffix:
            raise ClipError(f"{where}: missing member {needed!r}")
    try:
        meta = json.loads(tar.extractfile(by_suffix["meta.json"]).read())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ClipError(f"{where}: member 'meta.json': expected a JSON object ({err})") from err
    validate_meta(meta, where)
    valid = np.load(io.BytesIO(tar.extractfile(by_suffix["valid.npy"]).read()),
                    allow_pickle=False)
    info: dict[str, Any] = {"meta": meta, "frames": len(valid), "features": None}
    if "features.npy" in by_suffix:
        stream = tar.extractfile(by_suffix["features.npy"])
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(stream)
        if len(shape) != 2:
            raise ClipError(f"{where}: member 'features': expected shape (L, D), got {shape}")
        info["features"] = (shape, np.dtype(dtype).name)
    return info


def build_manifest(directory: str | os.PathLike) -> Manifest:
    """Index every ``*.tar`` of ``directory`` (sorted by name) and write its manifest.

    Dataset, split, kind, feature dim/dtype and joints3d come from the clips and must agree
    across them. The clips are not fully validated here; ``str-lightning data check`` does that.
    """
    directory = Path(directory)
    paths = sorted(directory.glob("*.tar"))
    if not paths:
        raise FileNotFoundError(f"{directory}: no *.tar shards to index")
    properties = SplitProperties()
    shards = []
    for path in paths:
        entries, infos = index_shard(path)
        for entry, info in zip(entries, infos):
            where = f"shard {path.name}, sample {entry.key!r}"
            stub: dict[str, Any] = {"meta": info["meta"]}
            if info["features"] is not None:
                shape, dtype = info["features"]
                stub["features"] = np.empty((0, shape[1]), dtype)
            properties.update(stub, where)
        shards.append(ShardEntry(path.name, len(entries), sum(e.frames for e in entries),
                                 file_sha256(path), tuple(entries)))
    values = properties.values
    if values["dataset"] is None:
        raise ShardError(f"{directory}: the shards hold no samples")
    manifest = Manifest(directory, values["dataset"], values["split"], values["kind"],
                        values["feature_dim"], values["feature_dtype"], values["joints3d"],
                        tuple(shards))
    write_manifest(manifest)
    return manifest


def recount_shard(manifest: Manifest, shard: ShardEntry) -> None:
    """``ShardError`` unless the shard file holds exactly the manifest's entry: a complete tar
    whose clips (key, frames, byte span), sample and frame counts are the listed ones."""
    entries, _ = index_shard(manifest.shard_path(shard))
    counted = ShardEntry(shard.name, len(entries), sum(e.frames for e in entries), shard.sha256,
                         tuple(entries))
    if counted == shard:
        return
    differences = [f"{name} {listed!r} (counted {actual!r})" for name, listed, actual in (
        ("samples", shard.samples, counted.samples), ("frames", shard.frames, counted.frames))
        if listed != actual]
    differences += [f"clip {listed} (counted {actual})" for listed, actual in
                    zip(shard.clips, counted.clips) if listed != actual]
    if len(shard.clips) != len(counted.clips):
        differences.append(f"{len(shard.clips)} clips (counted {len(counted.clips)})")
    raise ShardError(f"shard {shard.name}: the manifest lists {'; '.join(differences[:5])}: "
                     f"the manifest was edited or the shard replaced; run `str-lightning data "
                     f"index {manifest.directory}` if the shard is right")
