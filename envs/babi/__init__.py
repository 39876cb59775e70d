"""bAbI question answering (Weston et al. 2015, "Towards AI-Complete Question Answering"): the
official file format, data preparation for MemN2N-style models, the fetcher of the official
archive and memrl's own story generator.

Modules: `reader` (the format, `read_file`), `dataset` (task files, splits, vocabulary,
arrays), `fetch` (download and safe unpacking), `generator` (stories from a simulated world)
and `lexicon` (the generator's people, places and objects).
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
from envs.babi.generator import (
    GENERATED_TASKS,
    generate_lines,
    generate_samples,
    task_file_name,
    write_task_file,
)
from envs.babi.lexicon import DEFAULT_LEXICON, NOVEL_LEXICON, Lexicon, default_lexicon
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
    "DEFAULT_LEXICON",
    "GENERATED_TASKS",
    "NOVEL_LEXICON",
    "Lexicon",
    "default_lexicon",
    "generate_lines",
    "generate_samples",
    "task_file_name",
    "write_task_file",
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
