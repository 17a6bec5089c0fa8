"""Converters from the TCMR/VIBE preprocessed db files to clip shards (docs/data.md).

``convert(source, dataset, split, db, out, max_clip_len, ...)`` is the one entry point;
``str-lightning data convert`` calls it.
"""

from datamodules.converters.convert import (
    DEFAULT_MAX_CLIP_LEN,
    REPORT_NAME,
    ConversionError,
    ConversionReport,
    convert,
)
from datamodules.converters.datasets import DATASETS, SOURCES, DatasetSpec
from datamodules.converters.safe_joblib import (
    JoblibFormatError,
    UnsafePickleError,
    load_joblib_pickle,
)

__all__ = [
    "DATASETS", "DEFAULT_MAX_CLIP_LEN", "REPORT_NAME", "SOURCES", "ConversionError",
    "ConversionReport", "DatasetSpec", "JoblibFormatError", "UnsafePickleError", "convert",
    "load_joblib_pickle",
]
