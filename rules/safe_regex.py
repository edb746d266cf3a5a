"""Regular expressions typed by users, compiled and run so that no pattern can stall a worker.

Users write regexes in rule conditions; a catastrophic pattern (``(a|aa)+$`` on "aaaa…!") or a
pattern that explodes at compile time (``(?:a{1000}){1000}`` is unrolled into a million nodes and
several hundred MB) must cost a bounded amount of time and memory. Three limits apply:

- **compile time**: a pattern is refused (:class:`UnsafeRegex`) when it is longer than
  :data:`MAX_PATTERN_LENGTH`, uses verbose mode, does not compile, or when a conservative estimate of
  its unrolled size exceeds :data:`MAX_EXPANSION` (fixed repeat counts are unrolled by the ``regex``
  module, so nested ``{n}`` multiply; the estimate never under-counts, see :func:`expansion_estimate`);
- **match time**: :func:`search` passes the ``regex`` module's ``timeout=`` and turns a timeout into
  :class:`RegexTimeout`, which callers treat as "no match" and count (the rules engine does). The module
  measures the limit in *process CPU time* and checks it periodically: a 0.05 s limit costs 0.05 s of
  CPU, about 0.1 s of wall-clock time on a busy machine (and other busy threads of the same process make
  it fire sooner, which errs on the safe side);
- **text size**: only the first :data:`MAX_TEXT_CHARS` characters are scanned.

Patterns are case-insensitive, like every other text condition.
"""

from __future__ import annotations

import regex

MAX_PATTERN_LENGTH = 500
MAX_EXPANSION = 50_000  # ~13 MB / ~20 ms of compile in the worst case (measured: 1e6 units ~ 270 MB)
MAX_TEXT_CHARS = 100_000
DEFAULT_TIMEOUT = 0.05  # seconds per search
FLAGS = regex.IGNORECASE

# "{" then a repeat count, wherever it appears: a quantifier, a literal brace, inside a class. Counting
# them all over-estimates, which only ever refuses a pattern, never lets an expensive one through.
_MIN_REPEAT = regex.compile(r"\{\s*(\d+)")
# Inline flags that turn on verbose mode, where "{1 0 0 0}" would be a repeat the estimate cannot see.
_VERBOSE_FLAG = regex.compile(r"\(\?[A-Za-z0-9-]*x")


class UnsafeRegex(ValueError):
    """The pattern is refused: too long, invalid, or too expensive to compile. The message says why."""


class RegexTimeout(TimeoutError):
    """A search ran longer than its time limit; callers treat it as "no match" and report it."""

    def __init__(self, pattern: str, timeout: float) -> None:
        super().__init__(f"regular expression timed out after {timeout:g} s")
        self.pattern = pattern
        self.timeout = timeout


def expansion_estimate(pattern: str) -> int:
    """An upper bound of the pattern's size once fixed repeats are unrolled, capped just above the limit.

    Every atom is copied at most (product of the minimum counts of the repeats around it) times, which
    is at most the product of *all* minimum counts in the pattern; times the pattern's length this
    bounds the unrolled size without having to parse character classes, escapes or groups.
    """
    size = max(len(pattern), 1)
    for found in _MIN_REPEAT.finditer(pattern):
        size *= max(int(found.group(1)), 1)
        if size > MAX_EXPANSION:
            return MAX_EXPANSION + 1
    return size


def compile_user_regex(pattern: str) -> regex.Pattern:
    """Compile a user's pattern (case-insensitive) or raise :class:`UnsafeRegex` saying why not."""
    if not isinstance(pattern, str):
        raise UnsafeRegex("the pattern must be text")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafeRegex(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if _VERBOSE_FLAG.search(pattern):
        raise UnsafeRegex("verbose mode (?x) is not supported")
    if expansion_estimate(pattern) > MAX_EXPANSION:
        raise UnsafeRegex("the repeat counts are too large (the pattern would be too expensive to compile)")
    try:
        return regex.compile(pattern, FLAGS)
    except regex.error as exc:
        raise UnsafeRegex(str(exc)) from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:  # odd corners of the parser
        raise UnsafeRegex(f"the pattern cannot be compiled ({type(exc).__name__})") from None


def search(pattern: regex.Pattern, text: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether ``pattern`` occurs in the first :data:`MAX_TEXT_CHARS` characters of ``text``.

    Raises :class:`RegexTimeout` when the search takes longer than ``timeout`` seconds; the caller
    decides what that means (the rules engine: the condition is not satisfied, and it is counted).
    """
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
    try:
        return pattern.search(text, timeout=timeout) is not None
    except TimeoutError:
        raise RegexTimeout(pattern.pattern, timeout) from None
