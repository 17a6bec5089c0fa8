"""Converters from the TCMR/VIBE preprocessed db files to clip shards (docs/data.md).

``convert(source, dataset, split, db, out, max_clip_len, ...)`` is the one entry point;
``str-lightning data convert`` calls it. ``RELEASED_FILES``: every db file of TCMR's and VIBE's
releases and the shard directory the recipes read it from.
"""

from datamodules.converters.convert import (
    DEFAULT_MAX_CLIP_LEN,
    REPORT_NAME,
    ConversionError,
    ConversionReport,
    convert,
)
from datamodules.converters.datasets import DATASETS, SOURCES, DatasetSpec
from datamodules.converters.files import (
    RELEASED_FILES,
    ReleasedFile,
    WrongVariantError,
    check_released_file,
    files_for_directory,
    released_file,
)
from datamodules.converters.safe_joblib import (
    JoblibFormatError,
    UnsafePickleError,
    load_joblib_pickle,
)

__all__ = [
    "DATASETS",
    "DEFAULT_MAX_CLIP_LEN",
    "RELEASED_FILES",
    "REPORT_NAME",
    "SOURCES",
    "ConversionError",
    "ConversionReport",
    "DatasetSpec",
    "JoblibFormatError",
    "ReleasedFile",
    "UnsafePickleError",
    "WrongVariantError",
    "check_released_file",
    "convert",
    "files_for_directory",
    "load_joblib_pickle",
    "released_file",
]
