"""Writing: ``ShardWriter`` turns validated clips into shards and a manifest."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import webdataset as wds
from typing_extensions import Self

from datamodules.schema.encoding import TAR_BLOCK, encode_clip, sample_key
from datamodules.schema.errors import ClipError
from datamodules.schema.manifest import (
    MANIFEST_NAME,
    ClipEntry,
    Manifest,
    ShardEntry,
    file_sha256,
    write_manifest,
)
from datamodules.schema.validation import SplitProperties, validate_clip


class ShardWriter:
    """Write clips to ``out_dir/{split}-{index:06d}.tar`` and, on a clean exit, the manifest.

    Use as a context manager; ``write(clip)`` validates the clip (``ClipError`` before anything is
    written, so a caller may catch it and go on) and starts a new shard when the current one holds
    ``max_samples_per_shard`` clips or would pass ``max_shard_bytes``. Shards are written under a
    temporary name and renamed when complete. An exception leaving the ``with`` block removes the
    shards of this run and writes no manifest. ``overwrite`` removes an existing manifest and
    ``{split}-*.tar`` first; without it they are an error.
    """

    def __init__(self, out_dir: str | os.PathLike, dataset: str, split: str,
                 max_samples_per_shard: int = 64, max_shard_bytes: float = 256e6,
                 overwrite: bool = False) -> None:
        if max_samples_per_shard < 1 or max_shard_bytes <= 0:
            raise ValueError("ShardWriter: max_samples_per_shard >= 1 and max_shard_bytes > 0")
        self.out_dir = Path(out_dir)
        self.dataset, self.split = dataset, split
        self.max_samples, self.max_bytes = max_samples_per_shard, max_shard_bytes
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._clear_previous(overwrite)
        self._properties = SplitProperties(dataset, split)
        self._keys: set[str] = set()
        self._shards: list[ShardEntry] = []
        self._tar: wds.TarWriter | None = None
        self._clips: list[ClipEntry] = []

    def _clear_previous(self, overwrite: bool) -> None:
        previous = sorted(self.out_dir.glob(f"{self.split}-*.tar"))
        manifest = self.out_dir / MANIFEST_NAME
        previous += [manifest] if manifest.exists() else []
        if previous and not overwrite:
            raise FileExistsError(f"{self.out_dir}: already holds {previous[0].name} (and "
                                  f"{len(previous) - 1} more); remove them or pass overwrite")
        for path in previous:
            path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def write(self, clip: Mapping[str, Any]) -> None:
        """Validate ``clip`` and append it to the current shard."""
        meta = clip.get("meta") if isinstance(clip, Mapping) else None
        where = (f"clip video={meta.get('video')!r} start={meta.get('start')!r}"
                 if isinstance(meta, dict) else "clip")
        frames = validate_clip(clip, where, self._properties.values["feature_dim"])
        self._properties.update(clip, where)
        key = sample_key(clip["meta"])
        if key in self._keys:
            raise ClipError(f"{where}: key {key!r} already written (video and start must be "
                            f"unique after replacing characters outside [A-Za-z0-9_-])")
        members = encode_clip(clip)
        size = sum(TAR_BLOCK + math.ceil(len(v) / TAR_BLOCK) * TAR_BLOCK for v in members.values())
        if self._tar is not None and (len(self._clips) >= self.max_samples
                                      or self._tar.tarstream.offset + size > self.max_bytes):
            self._finish_shard()
        if self._tar is None:
            self._tar = wds.TarWriter(str(self._partial_path(len(self._shards))), encoder=False,
                                      mtime=0.0)
        offset = self._tar.tarstream.offset
        self._tar.write({"__key__": key, **members})
        self._clips.append(ClipEntry(key, frames, offset, self._tar.tarstream.offset - offset))
        self._keys.add(key)

    def close(self) -> None:
        """Finish the last shard and write ``manifest.json``."""
        if self._tar is not None:
            self._finish_shard()
        values = self._properties.values
        write_manifest(Manifest(self.out_dir, self.dataset, self.split, values["kind"] or "clip",
                                values["feature_dim"], values["feature_dtype"], values["joints3d"],
                                tuple(self._shards)))

    def _partial_path(self, index: int) -> Path:
        return self.out_dir / f"{self.split}-{index:06d}.tar.partial"

    def _finish_shard(self) -> None:
        self._tar.close()
        self._tar = None
        partial = self._partial_path(len(self._shards))
        final = partial.with_suffix("")
        partial.replace(final)
        self._shards.append(ShardEntry(final.name, len(self._clips),
                                       sum(c.frames for c in self._clips), file_sha256(final),
                                       tuple(self._clips)))
        self._clips = []

    def _abort(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._partial_path(len(self._shards)).unlink(missing_ok=True)
        for shard in self._shards:
            (self.out_dir / shard.name).unlink(missing_ok=True)

