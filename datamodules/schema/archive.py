"""Archive integrity: a shard is read or indexed only when its tar is complete.

Python's ``tarfile`` (and so WebDataset, which reads through it) takes a tar cut inside a
header, or a corrupt header, for the end of the archive: the samples after it silently vanish.
``complete_members`` lists the members with ``tarfile`` and then checks what ``tarfile`` does not:
every member's data (with its padding to whole blocks) lies inside the file, and where
``tarfile`` stopped the file holds the end-of-archive marker (two zero blocks). A failure is a
``ShardError`` naming the shard, where it is cut (a header, a member's data, the end marker) and
what to do.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from datamodules.schema.encoding import TAR_BLOCK
from datamodules.schema.errors import ShardError

END_MARKER = 2 * TAR_BLOCK  # the end-of-archive marker: two zero blocks
_REMEDY = ("re-copy the shard from its source or write it again (`str-lightning data convert "
           "... --overwrite`), then run `str-lightning data index` on its directory")


def padded_end(info: tarfile.TarInfo) -> int:
    """Offset just past a member's data, rounded up to a whole tar block."""
    return info.offset_data + -(-info.size // TAR_BLOCK) * TAR_BLOCK


def complete_members(path: Path) -> list[tarfile.TarInfo]:
    """The members of the tar at ``path``, after checking that the archive is complete.

    Raises ``ShardError`` when the file is cut inside a header, inside a member's data or inside
    (or before) the end-of-archive marker, or holds a corrupt header.
    """
    size = path.stat().st_size
    members: list[tarfile.TarInfo] = []
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                if padded_end(info) > size:
                    raise _truncated(path, size, f"inside the data of member {info.name!r} "
                                     f"(bytes {info.offset_data}..{padded_end(info)})")
                members.append(info)
            end = tar.offset
    except tarfile.ReadError as err:  # a header (or its pax/GNU extension) cut or corrupt
        start = padded_end(members[-1]) if members else 0
        raise _truncated(path, size, f"inside the tar header at byte {start}, or that header "
                         f"is corrupt (tarfile: {err})") from err
    _check_end_marker(path, size, end)
    return members


def _check_end_marker(path: Path, size: int, end: int) -> None:
    """``tarfile`` stopped at ``end``: the two zero blocks of the marker must be there."""
    with open(path, "rb") as stream:
        stream.seek(end)
        tail = stream.read(END_MARKER)
    if tail == bytes(END_MARKER):
        return
    first_block = tail[:TAR_BLOCK]
    if not tail:
        raise _truncated(path, size, f"at a member boundary: the end-of-archive marker (two zero "
                         f"blocks at byte {end}) is missing")
    if first_block.count(0) == len(first_block) and not tail[TAR_BLOCK:].strip(b"\0"):
        raise _truncated(path, size, f"inside the end-of-archive marker at byte {end} ({len(tail)} "
                         f"of {END_MARKER} bytes)")
    if len(first_block) < TAR_BLOCK:
        raise _truncated(path, size, f"inside a tar header at byte {end} ({len(first_block)} of "
                         f"{TAR_BLOCK} bytes)")
    bad = end if first_block.strip(b"\0") else end + TAR_BLOCK
    raise ShardError(f"shard {path}: corrupt tar header at byte {bad} (tarfile would stop there "
                     f"and drop every later sample); {_REMEDY}")


def _truncated(path: Path, size: int, where: str) -> ShardError:
    return ShardError(f"shard {path}: truncated {where}; the file has {size} bytes; {_REMEDY}")
