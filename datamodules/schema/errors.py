"""The errors of the clip-shard schema: every data error is a ``DataError``."""


class DataError(ValueError):
    """Base class of every data error of this package."""


class ClipError(DataError):
    """A clip that breaks the schema; the message names the clip, member, expected and actual."""


class ShardError(DataError):
    """A shard that cannot be read, or that disagrees with its manifest."""

