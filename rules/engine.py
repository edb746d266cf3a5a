"""Evaluating rules against messages: pure functions that say what to do and change nothing.

The integrator turns stored messages into :class:`RuleMessage` objects (decrypted, in memory only),
compiles the user's enabled rules once (:func:`prepare_rules`), and then either

- calls :func:`run` for a newly synced and analysed message, and applies the returned outcomes in order
  (:func:`combine` folds them into one net :class:`Plan`: one move, one flag change, ...), or
- calls :func:`dry_run` for "test this rule" over existing mail, which only lists what would match.

Semantics worth knowing:

- conditions are tested cheapest first; with all/any this changes nothing but speed;
- a condition whose data is missing (no date, not analysed yet: empty category, no urgency) is *not
  satisfied*, negated or not: a rule never fires on data it could not see;
- a regex that runs out of time is treated the same way (not satisfied, negated or not) and counted in
  :attr:`Evaluation.timeouts` / :attr:`RunResult.timeouts` so that "rule N: regex timed out" can be logged;
- in :func:`run`, a matched rule with a ``stop`` action ends processing after its own actions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

from rules import safe_regex, spec

# ---------------------------------------------------------------------------------------------------
# What the engine reads


@dataclass(eq=False)
class RuleMessage:
    """One message as rules see it. Text is compared case-insensitively; the lower-cased forms are
    computed on first use and cached, so 50 rules cost one ``lower()`` of the body, not 50.

    ``body`` is the plain-text body (for HTML-only mail, its text rendering); only its first
    :data:`rules.safe_regex.MAX_TEXT_CHARS` characters are looked at. ``attachment_types`` holds content
    types and lower-case filename extensions ("application/pdf", "pdf"). ``category`` is "" and
    ``urgency``/``importance`` are None until the message has been analysed.
    """

    id: str
    from_address: str = ""
    to_cc: list[str] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    has_attachment: bool = False
    attachment_types: list[str] = field(default_factory=list)
    folder: str = ""
    account_id: str = ""
    is_list: bool = False
    size: int = 0
    date: datetime | None = None
    category: str = ""
    urgency: int | None = None
    importance: int | None = None
    is_spam: bool = False
    tag_ids: set[int] = field(default_factory=set)
    sender_trusted: bool = False

    @cached_property
    def from_lower(self) -> str:
        return self.from_address.strip().lower()

    @cached_property
    def from_domain(self) -> str:
        _, at, domain = self.from_lower.rpartition("@")
        return domain if at else ""

    @cached_property
    def to_cc_lower(self) -> tuple[str, ...]:
        return tuple(address.strip().lower() for address in self.to_cc)

    @cached_property
    def subject_lower(self) -> str:
        return self.subject.lower()

    @cached_property
    def body_text(self) -> str:
        """The part of the body that conditions look at."""
        return self.body[: safe_regex.MAX_TEXT_CHARS]

    @cached_property
    def body_lower(self) -> str:
        return self.body_text.lower()

    @cached_property
    def attachment_types_lower(self) -> tuple[str, ...]:
        return tuple(kind.strip().lower() for kind in self.attachment_types)

    @cached_property
    def folder_key(self) -> str:
        return self.folder.strip().casefold()

    @cached_property
    def aware_date(self) -> datetime | None:
        """The date with a time zone (naive dates are taken as UTC), comparable with an aware ``now``."""
        if self.date is None or self.date.tzinfo is not None:
            return self.date
        return self.date.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------
# Compiled rules

# A condition test: True/False, or None when the message lacks the data (then the condition fails
# whether negated or not). Regex tests may raise safe_regex.RegexTimeout.
Test = Callable[[RuleMessage, datetime], "bool | None"]


class Action(NamedTuple):
    type: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    field: str
    op: str
    value: Any
    negate: bool
    cost: int  # lower is cheaper; conditions are tested in this order
    test: Test


@dataclass
class CompiledRule:
    """A validated rule, ready to evaluate: needles lower-cased, regexes compiled, conditions ordered by cost."""

    id: Any
    name: str
    order: int
    match: str
    conditions: tuple[CompiledCondition, ...]
    actions: tuple[Action, ...]
    match_all: bool = field(init=False)
    stops: bool = field(init=False)  # has a "stop" action

    def __post_init__(self) -> None:
        self.match_all = self.match == "all"
        self.stops = any(action.type == "stop" for action in self.actions)


class InvalidRule(ValueError):
    """The rule document does not validate; ``errors`` lists why (the same texts as validate_rule)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def compile_rule(id: Any, name: str, order: int, doc: Mapping[str, Any]) -> CompiledRule:
    """Validate and compile one rule; raises :class:`InvalidRule` (a ValueError) when the document is invalid."""
    errors = spec.validate_rule(doc)
    if errors:
        raise InvalidRule(errors)
    conditions = [_compile_condition(condition) for condition in doc["conditions"]]
    conditions.sort(key=lambda condition: condition.cost)  # stable: equal costs keep the user's order
    actions = tuple(Action(action["type"], action.get("value")) for action in doc["actions"])
    return CompiledRule(id, name, order, doc["match"], tuple(conditions), actions)


def prepare_rules(
    rows: Iterable[tuple[Any, str, int, Mapping[str, Any]]],
) -> tuple[list[CompiledRule], dict[Any, list[str]]]:
    """Compile a user's enabled rules given as (id, name, order, doc), sorted by order (ties keep input order).

    A rule that no longer validates (edited by hand, limits tightened) is left out and reported in the
    second result, keyed by rule id, instead of stopping every other rule from running.
    """
    compiled, broken = [], {}
    for rule_id, name, order, doc in rows:
        try:
            compiled.append(compile_rule(rule_id, name, order, doc))
        except InvalidRule as exc:
            broken[rule_id] = exc.errors
    compiled.sort(key=lambda rule: rule.order)
    return compiled, broken


def _compile_condition(condition: Mapping[str, Any]) -> CompiledCondition:
    name, op, value = condition["field"], condition["op"], condition["value"]
    cost, build = _BUILDERS[(name, op)]
    return CompiledCondition(name, op, value, bool(condition.get("negate", False)), cost, build(value))


# ---------------------------------------------------------------------------------------------------
# Condition tests, one builder per (field, op). Costs: flags and numbers 0, short strings 1-2, the body
# 5, regexes 10 (subject) and 20 (body).

_BUILDERS: dict[tuple[str, str], tuple[int, Callable[[Any], Test]]] = {}


def _builder(name: str, op: str, cost: int) -> Callable[[Callable[[Any], Test]], Callable[[Any], Test]]:
    def register(build: Callable[[Any], Test]) -> Callable[[Any], Test]:
        _BUILDERS[(name, op)] = (cost, build)
        return build

    return register


@_builder("from", "equals", 1)
def _from_equals(value: str) -> Test:
    needle = value.strip().lower()
    return lambda m, now: m.from_lower == needle


@_builder("from", "contains", 1)
def _from_contains(value: str) -> Test:
    needle = value.strip().lower()
    return lambda m, now: needle in m.from_lower


@_builder("from", "domain", 1)
def _from_domain(value: str) -> Test:
    """The domain itself or any of its subdomains: "example.com" matches "mail.example.com"."""
    domain = value.strip().lower().lstrip("@")
    suffix = "." + domain
    return lambda m, now: m.from_domain == domain or m.from_domain.endswith(suffix)


@_builder("to_cc", "contains", 2)
def _to_cc_contains(value: str) -> Test:
    needle = value.strip().lower()
    return lambda m, now: any(needle in address for address in m.to_cc_lower)


@_builder("subject", "contains", 2)
def _subject_contains(value: str) -> Test:
    needle = value.lower()
    return lambda m, now: needle in m.subject_lower


@_builder("subject", "matches", 10)
def _subject_matches(value: str) -> Test:
    pattern = safe_regex.compile_user_regex(value)
    return lambda m, now: safe_regex.search(pattern, m.subject)


@_builder("body", "contains", 5)
def _body_contains(value: str) -> Test:
    needle = value.lower()
    return lambda m, now: needle in m.body_lower


@_builder("body", "matches", 20)
def _body_matches(value: str) -> Test:
    pattern = safe_regex.compile_user_regex(value)
    return lambda m, now: safe_regex.search(pattern, m.body_text)


@_builder("has_attachment", "is", 0)
def _has_attachment(value: bool) -> Test:
    return lambda m, now: bool(m.has_attachment) == value


@_builder("attachment_type", "contains", 2)
def _attachment_type(value: str) -> Test:
    """ "pdf" matches "application/pdf" and the extension "pdf"; a leading dot (".pdf") is ignored."""
    needle = value.strip().lower().lstrip(".")
    return lambda m, now: any(needle in kind for kind in m.attachment_types_lower)


@_builder("folder", "equals", 1)
def _folder(value: str) -> Test:
    key = value.strip().casefold()
    return lambda m, now: m.folder_key == key


@_builder("account", "equals", 1)
def _account(value: str) -> Test:
    account_id = str(value).strip()
    return lambda m, now: str(m.account_id) == account_id


@_builder("is_list", "is", 0)
def _is_list(value: bool) -> Test:
    return lambda m, now: bool(m.is_list) == value


@_builder("size", "above", 0)
def _size_above(value: int) -> Test:
    return lambda m, now: m.size > value


@_builder("size", "below", 0)
def _size_below(value: int) -> Test:
    return lambda m, now: m.size < value


@_builder("age_days", "above", 0)
def _age_above(value: int) -> Test:
    age = timedelta(days=value)

    def test(m: RuleMessage, now: datetime) -> bool | None:
        date = m.aware_date
        if date is None:
            return None
        return date < (now if now.tzinfo is not None else now.replace(tzinfo=UTC)) - age

    return test


@_builder("category", "equals", 0)
def _category(value: str) -> Test:
    return lambda m, now: (m.category == value) if m.category else None


@_builder("urgency", "at_least", 0)
def _urgency(value: int) -> Test:
    return lambda m, now: None if m.urgency is None else m.urgency >= value


@_builder("importance", "at_least", 0)
def _importance(value: int) -> Test:
    return lambda m, now: None if m.importance is None else m.importance >= value


@_builder("is_spam", "is", 0)
def _is_spam(value: bool) -> Test:
    return lambda m, now: bool(m.is_spam) == value


@_builder("has_tag", "equals", 0)
def _has_tag(value: int) -> Test:
    tag_id = int(value)
    return lambda m, now: tag_id in m.tag_ids


@_builder("sender_trusted", "is", 0)
def _sender_trusted(value: bool) -> Test:
    return lambda m, now: bool(m.sender_trusted) == value


_UNEVALUATED = {(name, op) for name, field_spec in spec.FIELDS.items() for op in field_spec.ops} - set(_BUILDERS)
if _UNEVALUATED:  # a field added to spec.FIELDS without an evaluator: fail at import, not on some message
    raise RuntimeError(f"rules.engine has no evaluator for {sorted(_UNEVALUATED)}")


# ---------------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True, slots=True)
class Evaluation:
    matched: bool
    timeouts: int = 0  # regex searches that ran out of time (each treated as "condition not satisfied")


_MATCHED = Evaluation(True)
_NOT_MATCHED = Evaluation(False)


def evaluate(rule: CompiledRule, msg: RuleMessage, now: datetime) -> Evaluation:
    """Whether ``rule`` matches ``msg``, stopping at the first condition that decides (all: a failure,
    any: a success). Never raises for a slow regex: the timeout is counted instead."""
    timeouts = 0
    match_all = rule.match_all
    for condition in rule.conditions:
        try:
            result = condition.test(msg, now)
        except safe_regex.RegexTimeout:
            timeouts += 1
            result = None
        satisfied = result is not None and result != condition.negate
        if satisfied != match_all:
            return _evaluation(satisfied, timeouts)
    return _evaluation(match_all, timeouts)


def _evaluation(matched: bool, timeouts: int) -> Evaluation:
    if timeouts:
        return Evaluation(matched, timeouts)
    return _MATCHED if matched else _NOT_MATCHED


@dataclass(frozen=True, slots=True)
class Outcome:
    rule_id: Any
    actions: tuple[Action, ...]
    rule_name: str = ""


class RunResult(list):
    """The outcomes of :func:`run` (a list of :class:`Outcome`, matched rules in order), plus
    ``timeouts``: {rule id: regex timeouts} for every rule whose regex ran out of time, matched or not."""

    def __init__(self, outcomes: Iterable[Outcome] = (), timeouts: dict[Any, int] | None = None) -> None:
        super().__init__(outcomes)
        self.timeouts: dict[Any, int] = timeouts if timeouts is not None else {}


def run(rules: Sequence[CompiledRule], msg: RuleMessage, now: datetime) -> RunResult:
    """The outcomes of the rules (already sorted by order) for one message; changes nothing.

    A matched rule with a ``stop`` action contributes its own actions and ends the run.
    """
    result = RunResult()
    for rule in rules:
        evaluation = evaluate(rule, msg, now)
        if evaluation.timeouts:
            result.timeouts[rule.id] = evaluation.timeouts
        if evaluation.matched:
            result.append(Outcome(rule.id, rule.actions, rule.name))
            if rule.stops:
                break
    return result


# ---------------------------------------------------------------------------------------------------
# Dry run ("test this rule")


@dataclass
class DryRunResult:
    rule_id: Any
    actions: tuple[Action, ...]  # what the rule would do to each matched message
    matched_ids: list[str]  # at most max_listed ids, in the order the messages were given
    matched_count: int  # all matches among the scanned messages
    scanned: int
    timeouts: int
    aborted: bool  # stopped early because the rule's regex kept timing out


def dry_run(
    rule: CompiledRule,
    messages: Iterable[RuleMessage],
    now: datetime,
    *,
    max_listed: int | None = None,
    max_timeouts: int = 5,
) -> DryRunResult:
    """Which of ``messages`` the rule would match and what it would do, changing nothing.

    ``stop`` plays no part (it only matters between rules). The scan is abandoned after ``max_timeouts``
    regex timeouts: a pattern that keeps timing out would otherwise cost 50 ms per message.
    """
    matched_ids: list[str] = []
    matched = scanned = timeouts = 0
    for msg in messages:
        scanned += 1
        evaluation = evaluate(rule, msg, now)
        if evaluation.matched:
            matched += 1
            if max_listed is None or len(matched_ids) < max_listed:
                matched_ids.append(msg.id)
        timeouts += evaluation.timeouts
        if timeouts >= max_timeouts:
            return DryRunResult(rule.id, rule.actions, matched_ids, matched, scanned, timeouts, aborted=True)
    return DryRunResult(rule.id, rule.actions, matched_ids, matched, scanned, timeouts, aborted=False)


# ---------------------------------------------------------------------------------------------------
# Net effect of several outcomes


@dataclass
class Plan:
    """The net effect of applying outcomes in order (a later action overrides an earlier one), so the
    integrator makes one IMAP move and one flag change per message however many rules matched."""

    add_tags: set[int] = field(default_factory=set)
    remove_tags: set[int] = field(default_factory=set)
    seen: bool | None = None  # True: mark read, False: mark unread, None: leave
    flagged: bool | None = None
    destination: str | None = None  # "move", "trash" or "archive"
    folder_id: int | None = None  # with destination "move"
    category: str | None = None
    urgency: int | None = None
    importance: int | None = None
    done: bool = False
    rule_ids: list[Any] = field(default_factory=list)  # matched rules, in order

    def is_empty(self) -> bool:
        return not self.rule_ids


def combine(outcomes: Iterable[Outcome]) -> Plan:
    """Fold outcomes (as returned by :func:`run`) into one :class:`Plan`."""
    plan = Plan()
    for outcome in outcomes:
        plan.rule_ids.append(outcome.rule_id)
        for action in outcome.actions:
            _APPLY.get(action.type, _ignore)(plan, action.value)
    return plan


def _add_tag(plan: Plan, value: Any) -> None:
    plan.add_tags.add(value)
    plan.remove_tags.discard(value)


def _remove_tag(plan: Plan, value: Any) -> None:
    plan.remove_tags.add(value)
    plan.add_tags.discard(value)


def _set(attribute: str, constant: Any = None) -> Callable[[Plan, Any], None]:
    def apply(plan: Plan, value: Any) -> None:
        setattr(plan, attribute, value if constant is None else constant)

    return apply


def _destination(kind: str) -> Callable[[Plan, Any], None]:
    def apply(plan: Plan, value: Any) -> None:
        plan.destination = kind
        plan.folder_id = value if kind == "move" else None

    return apply


def _ignore(plan: Plan, value: Any) -> None:
    """``stop`` has already done its work in run()."""


_APPLY: dict[str, Callable[[Plan, Any], None]] = {
    "add_tag": _add_tag,
    "remove_tag": _remove_tag,
    "mark_read": _set("seen", True),
    "mark_unread": _set("seen", False),
    "flag": _set("flagged", True),
    "unflag": _set("flagged", False),
    "move": _destination("move"),
    "trash": _destination("trash"),
    "archive": _destination("archive"),
    "set_category": _set("category"),
    "set_urgency": _set("urgency"),
    "set_importance": _set("importance"),
    "mark_done": _set("done", True),
    "stop": _ignore,
}
