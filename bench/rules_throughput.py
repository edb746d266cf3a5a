"""Rules engine throughput: 50 rules over 10,000 in-memory messages, the dry-run ("test this rule") path.

    .venv/bin/python bench/rules_throughput.py [--rules 50] [--messages 10000] [--seed 1]

No Django, no database: the engine is pure, so this measures only evaluation. Messages are built in
memory (seeded, so runs are comparable); a fifth of them have 5-50 KB bodies. Rules mix contains,
domain, regex, numeric, tag and category conditions, all/any, some negated.

Two passes are timed:

- dry run: ``dry_run`` of each rule over all messages (rule-major, as "test this rule" does), starting
  with cold per-message caches, so the one-off lower-casing of subjects and bodies is included;
- per message: every rule evaluated on every message (message-major, like ``run`` without ``stop``),
  on fresh messages again.

Target (issue): >= 20,000 message-rule evaluations per second.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, so "rules" is the package and not this script

from rules.engine import CompiledRule, RuleMessage, compile_rule, dry_run, evaluate  # noqa: E402

TARGET = 20_000
NOW = datetime(2026, 3, 1, tzinfo=UTC)
WORD_TEXT = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up "
    "other about out many then them these so some her would make like him into time has look two more write "
    "go see number no way could people my than first water been call who oil its now find long down day did "
    "get come made may part invoice order meeting tomorrow payment receipt shipping delivery account report "
    "project deadline review update newsletter offer discount sale unsubscribe password security alert"
)
WORDS = WORD_TEXT.split()
DOMAINS = ["example.com", "mail.example.com", "corp.example", "shop.example.net", "news.example.org", "bank.example"]
CATEGORIES = ["action_required", "reply_expected", "information", "newsletter", "notification", "spam", ""]
ATTACHMENTS = [["application/pdf", "pdf"], ["image/png", "png"], ["text/calendar", "ics"], ["application/zip", "zip"]]
REGEXES = [
    r"invoice\s+#?\d{4,}",
    r"order (number|no\.?)\s*\d+",
    r"\bmeeting\b.{0,40}\btomorrow\b",
    r"unsubscribe|opt.out",
    r"^re:",
    r"[a-z]{2}\d{2}[a-z0-9]{11,30}",
]


def build_messages(count: int, rng: random.Random) -> list[RuleMessage]:
    """Varied messages: short and 5-50 KB bodies, several domains, tags, categories, attachments."""
    pool = " ".join(rng.choices(WORDS, k=300_000))
    messages = []
    for number in range(count):
        body_length = rng.randint(5_000, 50_000) if rng.random() < 0.2 else rng.randint(200, 3_000)
        start = rng.randrange(len(pool) - body_length)
        attachments = rng.choice(ATTACHMENTS) if rng.random() < 0.3 else []
        messages.append(
            RuleMessage(
                id=str(number),
                from_address=f"{rng.choice(WORDS)}{number % 97}@{rng.choice(DOMAINS)}",
                to_cc=[f"me@{DOMAINS[0]}"] + ([f"team@{rng.choice(DOMAINS)}"] if rng.random() < 0.3 else []),
                subject=("Re: " if rng.random() < 0.3 else "") + " ".join(rng.choices(WORDS, k=rng.randint(3, 10))),
                body=pool[start : start + body_length],
                has_attachment=bool(attachments),
                attachment_types=list(attachments),
                folder=rng.choice(["INBOX", "INBOX", "INBOX", "Archive", "Work"]),
                account_id=str(rng.randint(1, 3)),
                is_list=rng.random() < 0.25,
                size=body_length + rng.randint(500, 200_000),
                date=NOW - timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86_400)),
                category=rng.choice(CATEGORIES),
                urgency=rng.choice([None, 1, 2, 3]),
                importance=rng.choice([None, 1, 2, 3]),
                is_spam=rng.random() < 0.05,
                tag_ids=set(rng.sample(range(1, 20), rng.randint(0, 3))),
                sender_trusted=rng.random() < 0.1,
            )
        )
    return messages


def _random_condition(rng: random.Random) -> dict:
    kind = rng.randrange(10)
    if kind == 0:
        return {"field": "subject", "op": "contains", "value": rng.choice(WORDS)}
    if kind == 1:
        return {"field": "from", "op": "domain", "value": rng.choice(DOMAINS)}
    if kind == 2:
        return {"field": "body", "op": "contains", "value": " ".join(rng.choices(WORDS, k=2))}
    if kind == 3:
        return {"field": rng.choice(["subject", "body"]), "op": "matches", "value": rng.choice(REGEXES)}
    if kind == 4:
        return {"field": "size", "op": rng.choice(["above", "below"]), "value": rng.randint(10_000, 150_000)}
    if kind == 5:
        return {"field": "age_days", "op": "above", "value": rng.randint(7, 365)}
    if kind == 6:
        return {"field": "has_tag", "op": "equals", "value": rng.randint(1, 19)}
    if kind == 7:
        return {"field": "category", "op": "equals", "value": rng.choice(CATEGORIES[:-1])}
    if kind == 8:
        return {"field": rng.choice(["urgency", "importance"]), "op": "at_least", "value": rng.randint(1, 3)}
    return {"field": rng.choice(["is_list", "has_attachment", "sender_trusted"]), "op": "is", "value": True}


def build_rules(count: int, rng: random.Random) -> list[CompiledRule]:
    """Rules of 1-4 conditions, all or any, a quarter of the conditions negated."""
    rules = []
    for number in range(count):
        conditions = [{**_random_condition(rng), "negate": rng.random() < 0.25} for _ in range(rng.randint(1, 4))]
        doc = {
            "match": rng.choice(["all", "any"]),
            "conditions": conditions,
            "actions": [{"type": "add_tag", "value": rng.randint(1, 19)}, {"type": "mark_read", "value": None}],
        }
        rules.append(compile_rule(number, f"rule {number}", number, doc))
    return rules


def dry_run_pass(rules: list[CompiledRule], messages: list[RuleMessage]) -> tuple[int, int]:
    """(matches, regex timeouts) of "test this rule" for every rule in turn."""
    matched = timeouts = 0
    for rule in rules:
        result = dry_run(rule, messages, NOW, max_listed=50, max_timeouts=len(messages) + 1)
        matched += result.matched_count
        timeouts += result.timeouts
    return matched, timeouts


def per_message_pass(rules: list[CompiledRule], messages: list[RuleMessage]) -> tuple[int, int]:
    """(matches, regex timeouts) of every rule on each message in turn, ignoring stop."""
    matched = timeouts = 0
    for msg in messages:
        for rule in rules:
            evaluation = evaluate(rule, msg, NOW)
            matched += evaluation.matched
            timeouts += evaluation.timeouts
    return matched, timeouts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rules = build_rules(args.rules, random.Random(args.seed))
    evaluations = args.rules * args.messages
    print(f"{args.rules} rules x {args.messages} messages = {evaluations:,} message-rule evaluations")
    for label, one_pass in (("dry run (rule-major)", dry_run_pass), ("per message (message-major)", per_message_pass)):
        messages = build_messages(args.messages, random.Random(args.seed))  # fresh: cold caches
        started, cpu_started = time.perf_counter(), time.process_time()
        matched, timeouts = one_pass(rules, messages)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        rate = evaluations / elapsed
        verdict = "OK" if rate >= TARGET else "BELOW TARGET"
        print(
            f"{label:28s} {elapsed:6.2f} s ({cpu:5.2f} s CPU)  {rate:10,.0f} evaluations/s  "
            f"matches {matched:,}  regex timeouts {timeouts}  [{verdict}: target >= {TARGET:,}/s]"
        )


if __name__ == "__main__":
    main()
