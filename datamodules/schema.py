"""The clip-shard schema (described for humans in docs/data.md).

One sample of a WebDataset tar shard is one clip: consecutive frames of one person track. A clip
is a plain dict ``{"meta": dict, "features": (L, D), "kp2d": ..., ...}``; its members are stored
as ``<key>.meta.json`` and ``<key>.<name>.npy``. Every split directory holds shards
``{split}-{index:06d}.tar`` and a ``manifest.json`` that lists, per shard, its sample and frame
counts, its sha256 and every clip as ``[key, frames, offset, nbytes]`` (the byte span of the
clip's tar members, so one clip can be read without reading the shard).

This module is the single implementation of the schema: ``validate_clip`` (used when writing and
when reading), ``ShardWriter``, ``read_manifest``, ``build_manifest`` (for shards written by any
other tool), ``iterate_clips`` and ``read_clip``. Errors are ``ClipError`` (a bad clip: names the
clip or shard + sample, the member, expected and actual) and ``ShardError`` (an unreadable shard,
a checksum or manifest mismatch).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds
from typing_extensions import Self
from webdataset.tariterators import tarfile_samples

from str_lightning.body.joints import joint_names

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
KINDS = ("clip", "motion")
FEATURE_DTYPES = ("float16", "float32")
SUPERVISION_FLAGS = ("kp2d", "kp3d", "smpl")
_BLOCK = 512  # tar block size: members start and end on multiples of it

# name -> (allowed dtypes, shape with symbols: L frames, D feature dim, J joints of meta.joints3d)
ARRAY_MEMBERS: dict[str, tuple[tuple[str, ...], tuple[int | str, ...]]] = {
    "features": (FEATURE_DTYPES, ("L", "D")),
    "kp2d": (("float32",), ("L", 49, 3)),
    "kp3d": (("float32",), ("L", "J", 3)),
    "pose": (("float32",), ("L", 72)),
    "shape": (("float32",), ("L", 10)),
    "valid": (("uint8",), ("L",)),
    "frame_id": (("int64",), ("L",)),
    "bbox": (("float32",), ("L", 4)),
}
META_FIELDS: dict[str, type | tuple[type, ...]] = {
    "dataset": str, "video": str, "start": int, "split": str, "fps": (int, float), "kind": str,
    "supervision": dict, "joints3d": str,
}


class DataError(ValueError):
    """Base class of every data error of this package."""


class ClipError(DataError):
    """A clip that breaks the schema; the message names the clip, member, expected and actual."""


class ShardError(DataError):
    """A shard that cannot be read, or that disagrees with its manifest."""


# ----------------------------------------------------------------------------- validation


def required_members(meta: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """``(required, optional)`` array members of a clip with this (valid) ``meta``."""
    required = {"valid", "frame_id"}
    optional = {"bbox"}
    if meta["kind"] == "clip":
        required |= {"features", "kp2d"}
    else:
        optional.add("kp2d")
    if meta["supervision"]["kp3d"]:
        required.add("kp3d")
    if meta["supervision"]["smpl"] or meta["kind"] == "motion":
        required |= {"pose", "shape"}
    return required, optional


def validate_meta(meta: Any, where: str) -> None:
    """Check the ``meta`` member: field names, types and allowed values."""
    def fail(name: str, expected: str, actual: Any) -> ClipError:
        return ClipError(f"{where}: meta.{name}: expected {expected}, got {actual!r}")

    if not isinstance(meta, dict):
        raise fail("json", "an object", type(meta).__name__)
    for name, types in META_FIELDS.items():
        if name not in meta:
            raise ClipError(f"{where}: meta: missing field {name!r} (required: {list(META_FIELDS)})")
        value = meta[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise fail(name, f"type {getattr(types, '__name__', types)}", value)
    if meta["kind"] not in KINDS:
        raise fail("kind", f"one of {KINDS}", meta["kind"])
    if meta["start"] < 0 or not meta["video"] or not meta["fps"] > 0:
        raise fail("start/video/fps", "start >= 0, a non-empty video, fps > 0",
                   (meta["start"], meta["video"], meta["fps"]))
    supervision = meta["supervision"]
    if sorted(supervision) != sorted(SUPERVISION_FLAGS) or not all(
            isinstance(v, bool) for v in supervision.values()):
        raise fail("supervision", f"booleans for exactly {SUPERVISION_FLAGS}", supervision)
    if meta["kind"] == "motion" and supervision["kp2d"]:
        raise fail("supervision.kp2d", "false for kind 'motion'", True)
    if supervision["kp3d"]:
        try:
            joint_names(meta["joints3d"])
        except KeyError as err:
            raise fail("joints3d", "a joint-set name (kp3d is supervised)", meta["joints3d"]) from err
    elif meta["joints3d"]:
        raise fail("joints3d", "'' when kp3d is not supervised", meta["joints3d"])


def validate_clip(clip: Mapping[str, Any], where: str, feature_dim: int | None = None) -> int:
    """Check a clip against the schema and return its frame count L.

    ``where`` starts every error message (e.g. "shard train-000000.tar, sample k"). Checks: the
    meta fields, the exact set of members (required/optional from the meta), each array's dtype
    and shape (L from ``valid``, D from ``feature_dim`` when given, J from ``meta.joints3d``), L >= 1,
    ``valid`` in {0, 1} and every float array finite.
    """
    meta = clip.get("meta")
    if meta is None:
        raise ClipError(f"{where}: missing member 'meta'")
    validate_meta(meta, where)
    arrays = {k: v for k, v in clip.items() if k != "meta" and not k.startswith("__")}
    required, optional = required_members(meta)
    missing = sorted(required - arrays.keys())
    if missing:
        raise ClipError(f"{where}: missing member(s) {missing} (required for kind "
                        f"{meta['kind']!r}, supervision {meta['supervision']})")
    unexpected = sorted(arrays.keys() - required - optional)
    if unexpected:
        raise ClipError(f"{where}: unexpected member(s) {unexpected}; allowed here: "
                        f"{sorted(required | optional)}")
    valid = arrays["valid"]
    if not isinstance(valid, np.ndarray) or valid.ndim != 1 or len(valid) == 0:
        raise ClipError(f"{where}: member 'valid': expected a non-empty 1-D array, got "
                        f"{getattr(valid, 'shape', type(valid).__name__)}")
    sizes = {"L": len(valid), "D": feature_dim,
             "J": len(joint_names(meta["joints3d"])) if meta["joints3d"] else None}
    for name, array in arrays.items():
        _check_array(name, array, sizes, where)
    if not np.isin(valid, (0, 1)).all():
        raise ClipError(f"{where}: member 'valid': expected values in {{0, 1}}, got "
                        f"{np.unique(valid)[:8].tolist()}")
    return sizes["L"]


def _check_array(name: str, array: Any, sizes: dict[str, int | None], where: str) -> None:
    dtypes, symbolic = ARRAY_MEMBERS[name]
    if not isinstance(array, np.ndarray):
        raise ClipError(f"{where}: member {name!r}: expected a numpy array, got "
                        f"{type(array).__name__}")
    if array.dtype.name not in dtypes:
        raise ClipError(f"{where}: member {name!r}: expected dtype {' or '.join(dtypes)}, got "
                        f"{array.dtype.name}")
    expected = tuple(sizes[d] if isinstance(d, str) else d for d in symbolic)
    matches = array.ndim == len(expected) and all(
        e is None or e == a for e, a in zip(expected, array.shape))
    if not matches:
        raise ClipError(f"{where}: member {name!r}: expected shape "
                        f"{_shape_text(symbolic, sizes)}, got {tuple(array.shape)}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ClipError(f"{where}: member {name!r}: expected finite values, got {bad} NaN/Inf")


def _shape_text(shape: tuple[int | str, ...], sizes: dict[str, int | None]) -> str:
    parts = [f"{d}={sizes[d]}" if isinstance(d, str) and sizes[d] is not None else str(d)
             for d in shape]
    return "(" + ", ".join(parts) + ")"


# ----------------------------------------------------------------------------- encoding


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


# ----------------------------------------------------------------------------- manifest


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
    """Read and check ``directory/manifest.json`` (schema version, fields, listed shards exist)."""
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
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ShardError(f"{path}: malformed manifest ({type(err).__name__}: {err})") from err
    for shard in shards:
        if not manifest.shard_path(shard).is_file():
            raise FileNotFoundError(f"{path}: lists shard {shard.name}, which does not exist")
    return manifest


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


class _SplitProperties:
    """Dataset-level properties every clip of one split directory must share."""

    def __init__(self, dataset: str | None = None, split: str | None = None) -> None:
        self.values: dict[str, Any] = {"dataset": dataset, "split": split, "kind": None,
                                       "feature_dim": None, "feature_dtype": None, "joints3d": ""}

    def update(self, clip: Mapping[str, Any], where: str) -> None:
        meta = clip["meta"]
        seen = {"dataset": meta["dataset"], "split": meta["split"], "kind": meta["kind"]}
        if "features" in clip:
            seen["feature_dim"] = clip["features"].shape[1]
            seen["feature_dtype"] = clip["features"].dtype.name
        if meta["joints3d"]:
            seen["joints3d"] = meta["joints3d"]
        for name, value in seen.items():
            current = self.values[name]
            if current is None or current == "":
                self.values[name] = value
            elif current != value:
                raise ClipError(f"{where}: {name}: expected {current!r} (as every clip of this "
                                f"split directory), got {value!r}")


# ----------------------------------------------------------------------------- writing


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
        self._properties = _SplitProperties(dataset, split)
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
        size = sum(_BLOCK + math.ceil(len(v) / _BLOCK) * _BLOCK for v in members.values())
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


# ----------------------------------------------------------------------------- reading


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


# ----------------------------------------------------------------------------- indexing


def index_shard(path: Path) -> tuple[list[ClipEntry], list[dict[str, Any]]]:
    """Clip entries and decoded metas/feature shapes of one shard written by any tool.

    Reads the tar with random access (member offsets); decodes only ``meta.json``, ``valid.npy``
    and the header of ``features.npy``. Members of one key must be contiguous (WebDataset rule).
    """
    entries: list[ClipEntry] = []
    infos: list[dict[str, Any]] = []
    try:
        with tarfile.open(path, mode="r:") as tar:
            groups: list[tuple[str, list[tarfile.TarInfo]]] = []
            for info in tar:
                key, _, _ = info.name.partition(".")
                if groups and groups[-1][0] == key:
                    groups[-1][1].append(info)
                elif any(k == key for k, _ in groups):
                    raise ShardError(f"shard {path}: members of sample {key!r} are not "
                                     "contiguous")
                else:
                    groups.append((key, [info]))
            for key, members in groups:
                info = _index_members(tar, key, members, path)
                end = members[-1].offset_data + math.ceil(members[-1].size / _BLOCK) * _BLOCK
                entries.append(ClipEntry(key, info["frames"], members[0].offset,
                                         end - members[0].offset))
                infos.append(info)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ShardError(f"shard {path}: unreadable tar ({type(err).__name__}: {err})") from err
    return entries, infos


def _index_members(tar: tarfile.TarFile, key: str, members: list[tarfile.TarInfo],
                   path: Path) -> dict[str, Any]:
    where = f"shard {path.name}, sample {key!r}"
    by_suffix = {m.name.partition(".")[2]: m for m in members}
    for needed in ("meta.json", "valid.npy"):
        if needed not in by_suffix:
            raise ClipError(f"{where}: missing member {needed!r}")
    meta = json.loads(tar.extractfile(by_suffix["meta.json"]).read())
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
    properties = _SplitProperties()
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
