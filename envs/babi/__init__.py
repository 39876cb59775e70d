"""bAbI question answering (Weston et al. 2015, "Towards AI-Complete Question Answering"): the
official file format, data preparation for MemN2N-style models, the fetcher of the official
archive and memrl's own story generator.

Modules: `reader` (the format, `read_file`), `dataset` (task files, splits, vocabulary,
arrays), `fetch` (download and safe unpacking), `generator` (stories from a simulated world).
"""

from envs.babi.dataset import (
    PAD_ID,
    UNKNOWN_ID,
    BabiData,
    BabiDataConfig,
    EncodedSet,
    TaskFiles,
    Vocabulary,
    encode,
    find_task_files,
    load_babi,
    load_samples,
    prepare,
    split_validation,
)
from envs.babi.fetch import OFFICIAL_URL, BabiArchiveError, fetch_babi, unpack_archive
from envs.babi.reader import (
    TASK_NAMES,
    BabiDataError,
    BabiFormatError,
    Sample,
    parse_lines,
    parse_text,
    read_file,
    tokenize,
)

__all__ = [
    "OFFICIAL_URL",
    "BabiArchiveError",
    "fetch_babi",
    "unpack_archive",
    "PAD_ID",
    "TASK_NAMES",
    "UNKNOWN_ID",
    "BabiData",
    "BabiDataConfig",
    "BabiDataError",
    "BabiFormatError",
    "EncodedSet",
    "Sample",
    "TaskFiles",
    "Vocabulary",
    "encode",
    "find_task_files",
    "load_babi",
    "load_samples",
    "parse_lines",
    "parse_text",
    "prepare",
    "read_file",
    "split_validation",
    "tokenize",
]
