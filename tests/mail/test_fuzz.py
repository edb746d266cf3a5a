"""Fuzzed mail: mutations of real-shaped messages and extreme shapes, through the parser and a real sync.

Why: mail is input from anyone. Whatever arrives must be stored (with warnings) and must cost a bounded
time and memory, or one message stalls a mailbox's sync for good. The seed is fixed so a failure
replays; bench/fuzz.py runs the same generator for as long as it is given and prints what it finds.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from analysis.models import MessageAnalysis
from mail.models import Message
from mail.parsing import parse_message
from tests.plugins.hostile_mail import compressed_bomb, deep_nesting, extremes, many_parts, mutations, storable_problems
from tests.plugins.mail import create_account, run_sync

SEED = 20261205
# Generous for a loaded 2-core machine: the slowest mutation takes ~0.5 s here, the extremes ~0.3 s.
SECONDS_PER_MESSAGE = 5.0


def test_mutated_messages_never_raise_and_stay_storable():
    slowest = 0.0
    for index, raw in enumerate(mutations(SEED, 150)):
        started = time.perf_counter()
        parsed = parse_message(raw)  # never raises: an exception fails the test here
        elapsed = time.perf_counter() - started
        slowest = max(slowest, elapsed)
        assert not storable_problems(parsed), (index, storable_problems(parsed))
        assert elapsed < SECONDS_PER_MESSAGE, f"mutation {index} of seed {SEED} took {elapsed:.1f} s"
    assert slowest > 0


@pytest.mark.parametrize("extreme", extremes(), ids=lambda e: e.name)
def test_extreme_shapes_cost_bounded_time_and_memory(extreme):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        parsed = parse_message(extreme.raw)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert not storable_problems(parsed)
    assert elapsed < SECONDS_PER_MESSAGE * 3, f"{elapsed:.1f} s (tracemalloc slows the parse ~3x)"
    # Linear in the input: the decoded 20 MB attachment and its base64 text are both held once.
    assert peak < 8 * len(extreme.raw) + 32 * 2**20, f"peak {peak / 2**20:.0f} MiB for {len(extreme.raw)} bytes"
    if extreme.must_warn:
        assert parsed.warnings


def test_the_part_and_depth_limits_stop_the_parser_early_and_say_so():
    parts = parse_message(many_parts(100_000))
    nested = parse_message(deep_nesting(2_000))

    assert "more than 1000 MIME parts, the rest were ignored" in parts.warnings
    assert parts.text_body.count("x") <= 1000
    assert "MIME nesting deeper than 30 levels, inner parts ignored" in nested.warnings
    assert not any("RecursionError" in warning for warning in nested.warnings)


def test_a_compressed_bomb_is_stored_as_the_bytes_it_is():
    parsed = parse_message(compressed_bomb(megabytes=4))

    sizes = {a.filename: a.size for a in parsed.attachments}
    assert sizes["zeros.bin"] == 4 * 2**20
    assert sizes["bomb.zip"] < 64 * 1024  # never inflated


@pytest.mark.slow
@pytest.mark.django_db
def test_a_sync_of_hostile_mail_stores_every_message_once_with_its_warnings(dovecot, imap_user, alice):
    raws = [*mutations(SEED + 1, 40), many_parts(100_000), deep_nesting(2_000), compressed_bomb(megabytes=4)]
    for raw in raws:
        dovecot.deliver(imap_user, raw)
    account = create_account(alice.user, imap_user, dovecot)

    run = run_sync(account)

    assert run.status == "success", run.error
    assert run.messages_new == len(raws)
    stored = list(Message.objects.filter(account=account).order_by("uid"))
    assert [m.uid for m in stored] == list(range(1, len(raws) + 1))
    assert MessageAnalysis.objects.filter(message__account=account).count() == len(raws)
    parts, nested, bomb = stored[-3:]
    assert "more than 1000 MIME parts, the rest were ignored" in parts.parse_warnings
    assert "MIME nesting deeper than 30 levels, inner parts ignored" in nested.parse_warnings
    assert {a.filename for a in bomb.attachments.all()} == {"bomb.zip", "zeros.bin"}
    for message in stored:
        assert message.raw, f"uid {message.uid} stored without its source"
