"""rules.engine: every condition (and its negation), all/any, stop, dry runs and the net plan.

Pure: RuleMessage objects in memory, no database. Each field/op has a message that matches and one that
does not; negation must flip both, except where the message lacks the data (then neither matches).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rules import templates
from rules.engine import (
    Action,
    InvalidRule,
    Outcome,
    RuleMessage,
    combine,
    compile_rule,
    dry_run,
    evaluate,
    prepare_rules,
    run,
)
from rules.senders import SenderPatterns, normalize_sender_pattern

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def message(**fields) -> RuleMessage:
    base = {
        "id": "m1",
        "from_address": "Alice.Smith@Mail.Example.com",
        "to_cc": ["Team@Corp.example", "bob@other.org"],
        "subject": "Your INVOICE 2026-0042",
        "body": "Hello,\nplease find the invoice attached.\nTo unsubscribe click here.",
        "has_attachment": True,
        "attachment_types": ["application/pdf", "pdf"],
        "folder": "INBOX",
        "account_id": "3",
        "is_list": False,
        "size": 120_000,
        "date": NOW - timedelta(days=40),
        "category": "action_required",
        "urgency": 2,
        "importance": 3,
        "is_spam": False,
        "tag_ids": {7, 9},
        "sender_trusted": True,
    }
    base.update(fields)
    return RuleMessage(**base)


def rule_of(*conditions: dict, match: str = "all", actions: list[dict] | None = None, rule_id=1, order=1):
    doc = {"match": match, "conditions": list(conditions), "actions": actions or [{"type": "flag", "value": None}]}
    return compile_rule(rule_id, f"rule {rule_id}", order, doc)


def cond(field: str, op: str, value, negate: bool = False) -> dict:
    return {"field": field, "op": op, "value": value, "negate": negate}


def matches(condition: dict, msg: RuleMessage) -> bool:
    return evaluate(rule_of(condition), msg, NOW).matched


# (field, op, value, changes that make the message NOT match)
CASES = [
    ("from", "equals", "alice.smith@mail.example.com", {"from_address": "alice@mail.example.com"}),
    ("from", "equals", " ALICE.SMITH@MAIL.EXAMPLE.COM ", {"from_address": "x.alice.smith@mail.example.com"}),
    ("from", "contains", "smith@", {"from_address": "alice@example.com"}),
    ("from", "domain", "example.com", {"from_address": "alice@example.com.evil.org"}),
    ("from", "domain", "@mail.example.com", {"from_address": "alice@notmail.example.com"}),
    ("from", "domain", "Example.COM", {"from_address": "example.com"}),
    ("to_cc", "contains", "team@corp", {"to_cc": ["bob@other.org"]}),
    ("subject", "contains", "invoice", {"subject": "Your bill"}),
    ("subject", "matches", r"invoice \d{4}-\d+", {"subject": "invoice 26-0042"}),
    ("subject", "matches", r"^your", {"subject": "About your invoice"}),
    ("body", "contains", "UNSUBSCRIBE", {"body": "Hello"}),
    ("body", "matches", r"find\s+the\s+\w+ attached", {"body": "nothing attached"}),
    ("has_attachment", "is", True, {"has_attachment": False}),
    ("has_attachment", "is", False, {}),  # inverse: the base message has one
    ("attachment_type", "contains", "pdf", {"attachment_types": ["image/png", "png"]}),
    ("attachment_type", "contains", ".PDF", {"attachment_types": []}),
    ("attachment_type", "contains", "image/", {}),
    ("folder", "equals", "inbox", {"folder": "Archive"}),
    ("account", "equals", "3", {"account_id": "4"}),
    ("is_list", "is", True, {}),
    ("is_list", "is", False, {"is_list": True}),
    ("size", "above", 100_000, {"size": 100_000}),
    ("size", "below", 120_001, {"size": 120_001}),
    ("age_days", "above", 30, {"date": NOW - timedelta(days=29)}),
    ("category", "equals", "action_required", {"category": "newsletter"}),
    ("urgency", "at_least", 2, {"urgency": 1}),
    ("importance", "at_least", 3, {"importance": 2}),
    ("is_spam", "is", False, {"is_spam": True}),
    ("is_spam", "is", True, {}),
    ("has_tag", "equals", 9, {"tag_ids": {7}}),
    ("has_tag", "equals", 8, {}),
    ("sender_trusted", "is", True, {"sender_trusted": False}),
]


@pytest.mark.parametrize(("field", "op", "value", "change"), CASES)
def test_condition_and_its_negation(field: str, op: str, value, change: dict) -> None:
    base = message()
    other = message(**change)
    if change:
        assert matches(cond(field, op, value), base) is True
        assert matches(cond(field, op, value), other) is False
        assert matches(cond(field, op, value, negate=True), base) is False
        assert matches(cond(field, op, value, negate=True), other) is True
    else:  # cases written so that the base message does not match
        assert matches(cond(field, op, value), base) is False
        assert matches(cond(field, op, value, negate=True), base) is True


def test_every_field_op_has_a_case() -> None:
    from rules.spec import OP_CHOICES

    assert {(f, o) for f, o, _, _ in CASES} == {(f, o) for f, ops in OP_CHOICES.items() for o, _ in ops}


@pytest.mark.parametrize(
    ("condition", "missing"),
    [
        (cond("age_days", "above", 1), {"date": None}),
        (cond("category", "equals", "newsletter"), {"category": ""}),
        (cond("urgency", "at_least", 1), {"urgency": None}),
        (cond("importance", "at_least", 1), {"importance": None}),
    ],
)
def test_missing_data_never_satisfies_a_condition(condition: dict, missing: dict) -> None:
    """Not analysed yet / no date: neither the condition nor its negation holds."""
    msg = message(**missing)
    assert matches(condition, msg) is False
    assert matches({**condition, "negate": True}, msg) is False


def test_naive_dates_are_taken_as_utc() -> None:
    msg = message(date=datetime(2026, 1, 1, 12, 0))
    assert matches(cond("age_days", "above", 30), msg) is True
    assert evaluate(rule_of(cond("age_days", "above", 30)), msg, datetime(2026, 1, 15)).matched is False


def test_empty_sender_has_no_domain() -> None:
    msg = message(from_address="")
    assert matches(cond("from", "domain", "example.com"), msg) is False
    assert matches(cond("from", "contains", "a"), msg) is False


def test_body_conditions_see_only_the_first_100_000_characters() -> None:
    msg = message(body="x" * 100_000 + "needle")
    assert matches(cond("body", "contains", "needle"), msg) is False
    assert matches(cond("body", "matches", "needle"), msg) is False


# --- all / any --------------------------------------------------------------------------------------


def test_match_all_needs_every_condition() -> None:
    yes, no = cond("subject", "contains", "invoice"), cond("is_spam", "is", True)
    assert evaluate(rule_of(yes, yes, match="all"), message(), NOW).matched is True
    assert evaluate(rule_of(yes, no, match="all"), message(), NOW).matched is False


def test_match_any_needs_one_condition() -> None:
    yes, no = cond("subject", "contains", "invoice"), cond("is_spam", "is", True)
    assert evaluate(rule_of(no, yes, match="any"), message(), NOW).matched is True
    assert evaluate(rule_of(no, no, match="any"), message(), NOW).matched is False


def test_cheap_conditions_are_tested_first_and_short_circuit() -> None:
    """A failing flag check decides an "all" rule before its regex is ever run."""
    rule = rule_of(cond("subject", "matches", r"(a|aa)+$"), cond("is_spam", "is", True), match="all")
    assert [c.field for c in rule.conditions] == ["is_spam", "subject"]
    evaluation = evaluate(rule, message(subject="a" * 30 + "!"), NOW)
    assert evaluation.matched is False and evaluation.timeouts == 0


def test_lower_cased_text_is_computed_once_per_message() -> None:
    msg = message()
    rules = [rule_of(cond("body", "contains", word), rule_id=i) for i, word in enumerate(["invoice", "hello", "zzz"])]
    for rule in rules:
        evaluate(rule, msg, NOW)
    assert msg.__dict__["body_lower"] == msg.body.lower()
    msg.__dict__["body_lower"] = "replaced"  # the cache is what later rules read
    assert evaluate(rule_of(cond("body", "contains", "replaced")), msg, NOW).matched


# --- run: order, stop, idempotence --------------------------------------------------------------------


def test_run_returns_matched_rules_in_order_and_changes_nothing() -> None:
    rules = [
        rule_of(cond("subject", "contains", "invoice"), actions=[{"type": "add_tag", "value": 1}], rule_id="a"),
        rule_of(cond("is_spam", "is", True), actions=[{"type": "trash"}], rule_id="b", order=2),
        rule_of(cond("has_attachment", "is", True), actions=[{"type": "mark_read"}], rule_id="c", order=3),
    ]
    msg = message()
    before = dict(vars(msg))
    result = run(rules, msg, NOW)
    assert [o.rule_id for o in result] == ["a", "c"]
    assert result[0].actions == (Action("add_tag", 1),) and result[1].actions == (Action("mark_read", None),)
    assert result.timeouts == {}
    assert {k: v for k, v in vars(msg).items() if k in before} == before  # only caches were added
    assert run(rules, msg, NOW) == result  # same message, same answer: safe to re-run


def test_stop_ends_processing_after_its_own_actions() -> None:
    stop_actions = [{"type": "archive"}, {"type": "stop"}]
    rules = [
        rule_of(cond("is_spam", "is", True), actions=[{"type": "trash"}, {"type": "stop"}], rule_id=1),
        rule_of(cond("subject", "contains", "invoice"), actions=stop_actions, rule_id=2, order=2),
        rule_of(cond("has_attachment", "is", True), rule_id=3, order=3),
    ]
    result = run(rules, message(), NOW)
    assert [(o.rule_id, [a.type for a in o.actions]) for o in result] == [(2, ["archive", "stop"])]


def test_stop_in_an_unmatched_rule_does_nothing() -> None:
    rules = [
        rule_of(cond("is_spam", "is", True), actions=[{"type": "trash"}, {"type": "stop"}], rule_id=1),
        rule_of(cond("has_attachment", "is", True), rule_id=2, order=2),
    ]
    assert [o.rule_id for o in run(rules, message(), NOW)] == [2]


def test_prepare_rules_sorts_and_sets_broken_rules_aside() -> None:
    good = {"match": "all", "conditions": [cond("is_spam", "is", False)], "actions": [{"type": "flag"}]}
    broken = {"match": "all", "conditions": [cond("subject", "matches", "(")], "actions": [{"type": "flag"}]}
    rules, errors = prepare_rules([(1, "late", 5, good), (2, "broken", 1, broken), (3, "early", 2, good)])
    assert [r.id for r in rules] == [3, 1]
    assert list(errors) == [2] and "valid regular expression" in errors[2][0]


def test_compile_rule_refuses_invalid_documents() -> None:
    with pytest.raises(InvalidRule) as info:
        compile_rule(1, "x", 1, {"match": "all", "conditions": [], "actions": []})
    assert isinstance(info.value, ValueError) and "rule: needs at least one condition" in info.value.errors


# --- dry run ------------------------------------------------------------------------------------------


def test_dry_run_lists_matches_and_actions() -> None:
    rule = rule_of(cond("subject", "contains", "invoice"), actions=[{"type": "move", "value": 4}], rule_id=9)
    messages = [message(id=str(i), subject="invoice" if i % 3 == 0 else "hello") for i in range(10)]
    result = dry_run(rule, messages, NOW, max_listed=2)
    assert result.matched_ids == ["0", "3"] and result.matched_count == 4 and result.scanned == 10
    assert result.actions == (Action("move", 4),) and not result.aborted and result.timeouts == 0
    assert [m.subject for m in messages].count("invoice") == 4  # nothing changed


def test_dry_run_ignores_stop() -> None:
    rule = rule_of(cond("is_spam", "is", False), actions=[{"type": "trash"}, {"type": "stop"}])
    assert dry_run(rule, [message(id="1"), message(id="2")], NOW).matched_ids == ["1", "2"]


# --- plan -------------------------------------------------------------------------------------------


def test_combine_applies_outcomes_in_order() -> None:
    outcomes = [
        Outcome(1, (Action("add_tag", 5), Action("move", 4), Action("mark_read"), Action("set_urgency", 3))),
        Outcome(2, (Action("remove_tag", 5), Action("add_tag", 6), Action("trash"), Action("flag"))),
        Outcome(3, (Action("mark_unread"), Action("set_category", "spam"), Action("mark_done"), Action("stop"))),
    ]
    plan = combine(outcomes)
    assert plan.add_tags == {6} and plan.remove_tags == {5}
    assert plan.destination == "trash" and plan.folder_id is None
    assert plan.seen is False and plan.flagged is True
    assert (plan.category, plan.urgency, plan.importance, plan.done) == ("spam", 3, None, True)
    assert plan.rule_ids == [1, 2, 3] and not plan.is_empty()
    assert combine([]).is_empty()


def test_combine_move_keeps_the_folder() -> None:
    plan = combine([Outcome(1, (Action("archive"),)), Outcome(2, (Action("move", 12), Action("unflag")))])
    assert (plan.destination, plan.folder_id, plan.flagged) == ("move", 12, False)


# --- templates in action ------------------------------------------------------------------------------


def test_templates_behave() -> None:
    _, newsletter = templates.newsletter_archive()
    _, spam = templates.keyword_spam_trash()
    _, vip = templates.vip_flag_urgent()
    _, attachments = templates.attachments_tag(5)
    rules = [compile_rule(i, "t", i, doc) for i, doc in enumerate([spam, newsletter, vip, attachments])]
    assert [o.rule_id for o in run(rules, message(), NOW)] == [2, 3]
    assert [o.rule_id for o in run(rules, message(body="You are a LOTTERY WINNER!"), NOW)] == [0]
    assert [o.rule_id for o in run(rules, message(is_list=True, sender_trusted=False), NOW)] == [1, 3]


# --- trusted senders ----------------------------------------------------------------------------------


def test_sender_patterns_addresses_domains_and_wildcards() -> None:
    patterns = SenderPatterns(
        ["Alice@Example.com", "@corp.com", "partner.org", "boss*@big.com", "*@*.example.org", "*.example.net", "*"]
    )
    assert patterns.matches("alice@example.com") and not patterns.matches("alice2@example.com")
    assert patterns.matches("x@corp.com") and patterns.matches("x@eu.corp.com") and not patterns.matches("x@corp.co")
    assert patterns.matches("z@partner.org")
    assert patterns.matches("BOSS-2@big.com") and not patterns.matches("bo@big.com")
    assert patterns.matches("q@a.example.org") and not patterns.matches("q@example.org")
    assert patterns.matches("r@x.example.net")
    assert not patterns.matches("nobody@else.com") and not patterns.matches("") and not patterns.matches("no-at")


@pytest.mark.parametrize("pattern", ["", "*", "*@*", "a b@c.d", "a@b@c", "x@", "<a@b.c>"])
def test_sender_pattern_validation(pattern: str) -> None:
    with pytest.raises(ValueError):
        normalize_sender_pattern(pattern)


def test_sender_wildcards_cannot_blow_up() -> None:
    import time

    patterns = SenderPatterns(["*a" * 40 + "*b@*x.com"])
    started = time.perf_counter()
    assert not patterns.matches("a" * 200 + "@" + "x" * 100 + ".com")
    assert time.perf_counter() - started < 0.5


def test_sender_trusted_feeds_the_condition() -> None:
    vips = SenderPatterns(["@mail.example.com"])
    msg = message(sender_trusted=vips.matches("alice.smith@mail.example.com"))
    assert matches(cond("sender_trusted", "is", True), msg)
