"""Post-analysis stages for tests/analysis/test_post_analysis.py, named by dotted path in its settings.

Each records the call it got; `flaky` fails for the owners in `failing_owners`, after a write that
its transaction must take back, with mail content in the exception's text that must go nowhere.
"""

from __future__ import annotations

from tags.models import Tag

calls: list[tuple[str, int, set]] = []  # (stage, owner id, message ids)
failing_owners: set[int] = set()


class StageBroke(Exception):
    pass


def first(owner_id: int, messages: list) -> None:
    calls.append(("first", owner_id, {m.pk for m in messages}))


def flaky(owner_id: int, messages: list) -> None:
    calls.append(("flaky", owner_id, {m.pk for m in messages}))
    if owner_id in failing_owners:
        Tag.objects.create(owner_id=owner_id, name="half-done")
        raise StageBroke(f"cannot handle {messages[0].subject!r}")


def last(owner_id: int, messages: list) -> None:
    calls.append(("last", owner_id, {m.pk for m in messages}))
