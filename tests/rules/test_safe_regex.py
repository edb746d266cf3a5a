"""rules.safe_regex: a user's regex can cost neither unbounded match time nor unbounded compile memory.

The regex module already defuses the textbook ``(a+)+$``; ``(a|aa)+$`` and ``(\\w|a)+$`` are still
exponential in it, so they are the patterns that prove the time limit. The module's limit counts the
process's CPU time, so the wall-clock bounds below leave room for a loaded machine.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import pytest

from rules import safe_regex
from rules.engine import RuleMessage, compile_rule, dry_run, evaluate, run
from rules.safe_regex import RegexTimeout, UnsafeRegex, compile_user_regex, search

EVIL_TEXT = "a" * 30 + "!"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_case_insensitive_search() -> None:
    pattern = compile_user_regex(r"invoice\s+#?\d+")
    assert search(pattern, "Your INVOICE #1234 is ready") is True
    assert search(pattern, "no number here") is False


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r"(\w|a)+$"])
def test_catastrophic_pattern_times_out_quickly(pattern: str) -> None:
    compiled = compile_user_regex(pattern)
    started, cpu_started = time.perf_counter(), time.process_time()
    with pytest.raises(RegexTimeout) as info:
        search(compiled, EVIL_TEXT, timeout=0.05)
    assert time.perf_counter() - started < 0.5
    assert time.process_time() - cpu_started < 0.2
    assert info.value.pattern == pattern and info.value.timeout == 0.05


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(x+x+)+y", r"^(\w+\s?)*$"])
def test_classic_redos_patterns_finish_quickly(pattern: str) -> None:
    """Whether the module defuses them or the limit stops them, they return well within the bound."""
    compiled = compile_user_regex(pattern)
    for text in (EVIL_TEXT, "x" * 30, "a b " * 10 + "!"):
        started = time.perf_counter()
        with contextlib.suppress(RegexTimeout):
            search(compiled, text, timeout=0.05)
        assert time.perf_counter() - started < 0.5


def test_engine_counts_timeout_as_no_match_and_stays_fast() -> None:
    """THE regex safety test: a catastrophic rule cannot stall evaluation, and its timeouts are reported."""
    rule = compile_rule(1, "evil", 1, {"match": "all", "conditions": [_matches(r"(a|aa)+$")], "actions": [_trash()]})
    msg = RuleMessage(id="m1", subject=EVIL_TEXT)
    started = time.perf_counter()
    evaluation = evaluate(rule, msg, NOW)
    assert time.perf_counter() - started < 0.5
    assert evaluation.matched is False and evaluation.timeouts == 1

    result = run([rule], msg, NOW)
    assert list(result) == [] and result.timeouts == {1: 1}


def test_timeout_fails_a_negated_condition_too() -> None:
    """A pattern that could not be evaluated never triggers actions, even as "NOT subject matches"."""
    rule = compile_rule(
        1, "evil", 1, {"match": "all", "conditions": [_matches(r"(a|aa)+$", negate=True)], "actions": [_trash()]}
    )
    evaluation = evaluate(rule, RuleMessage(id="m1", subject=EVIL_TEXT), NOW)
    assert evaluation.matched is False and evaluation.timeouts == 1


def test_dry_run_gives_up_on_a_pattern_that_keeps_timing_out() -> None:
    rule = compile_rule(1, "evil", 1, {"match": "any", "conditions": [_matches(r"(a|aa)+$")], "actions": [_trash()]})
    messages = [RuleMessage(id=str(i), subject=EVIL_TEXT) for i in range(100)]
    started = time.perf_counter()
    result = dry_run(rule, messages, NOW, max_timeouts=3)
    assert time.perf_counter() - started < 1.0
    assert result.aborted and result.scanned == 3 and result.timeouts == 3 and result.matched_count == 0


def test_overlong_pattern_refused_at_compile_time() -> None:
    with pytest.raises(UnsafeRegex, match="longer than 500"):
        compile_user_regex("a" * 501)
    assert compile_user_regex("a" * 500)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?:a{1000}){1000}",  # unrolled into a million nodes: ~270 MB and 0.4 s if compiled
        r"(?:(?:ab|cd){1000}){1000}",  # crashes the interpreter if compiled
        r"a{4294967294}",
        r"((((a{100}){100}){100}))",
        r"x{99999999999999999999999}",
    ],
)
def test_explosive_repeat_counts_refused_before_compiling(pattern: str) -> None:
    started = time.perf_counter()
    with pytest.raises(UnsafeRegex, match="repeat counts"):
        compile_user_regex(pattern)
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    "pattern",
    [r"\d{4}-\d{2}-\d{2}", r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", r"(\d{1,3}\.){3}\d{1,3}", r".{0,500}", r"x{1000}"],
)
def test_ordinary_repeats_accepted(pattern: str) -> None:
    assert compile_user_regex(pattern)


def test_expansion_estimate_never_below_the_unrolled_size() -> None:
    assert safe_regex.expansion_estimate(r"(?:ab{10}){20}") >= 2 * 10 * 20
    assert safe_regex.expansion_estimate(r"[{]{10}") >= 10  # a brace inside a class still counts


@pytest.mark.parametrize("pattern", [r"(?x)a{1 0 0 0}", r"(?ix:a)", r"b(?xi)a"])
def test_verbose_mode_refused(pattern: str) -> None:
    """In verbose mode "{1 0 0 0}" is a repeat count the estimate could not see."""
    with pytest.raises(UnsafeRegex, match="verbose"):
        compile_user_regex(pattern)


@pytest.mark.parametrize("pattern", ["(unclosed", "[a-", "*oops", r"\L<undefined>", "a{2,1}"])
def test_invalid_syntax_refused(pattern: str) -> None:
    with pytest.raises(UnsafeRegex):
        compile_user_regex(pattern)


def test_unsafe_regex_is_a_value_error() -> None:
    assert issubclass(UnsafeRegex, ValueError)
    assert issubclass(RegexTimeout, TimeoutError)


def test_scanned_text_is_capped() -> None:
    pattern = compile_user_regex("needle")
    head = "x" * (safe_regex.MAX_TEXT_CHARS - 10)
    assert search(pattern, head + "needle") is True
    assert search(pattern, head + "x" * 20 + "needle") is False


def _matches(pattern: str, negate: bool = False) -> dict:
    return {"field": "subject", "op": "matches", "value": pattern, "negate": negate}


def _trash() -> dict:
    return {"type": "trash", "value": None}
