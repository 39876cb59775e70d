"""CLEVR (Johnson et al. 2017) over scene graphs: CLEVR's JSON formats, a symbolic executor with
CLEVR's semantics, and seeded scene and question generators, so a config runs with no files.

The gym env and the program generator build on these (see issue 24).
"""

from envs.clevr.catalog import ATTRIBUTES, FUNCTIONS, RELATIONS
from envs.clevr.executor import (
    ExecutionError,
    Node,
    Trace,
    execute,
    execute_steps,
    is_error,
    parse_program,
)
from envs.clevr.formats import (
    ClevrFormatError,
    Question,
    normalise_answer,
    read_questions,
    read_scenes,
    write_questions,
    write_scenes,
)

__all__ = [
    "ATTRIBUTES",
    "FUNCTIONS",
    "RELATIONS",
    "ClevrFormatError",
    "ExecutionError",
    "Node",
    "Question",
    "Trace",
    "execute",
    "execute_steps",
    "is_error",
    "normalise_answer",
    "parse_program",
    "read_questions",
    "read_scenes",
    "write_questions",
    "write_scenes",
]
