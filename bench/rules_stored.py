"""Rules dry-run over 10,000 *stored* messages (issue 5 target: >= 20,000 message-rule evaluations/s).

    .venv/bin/python bench/rules_stored.py [--messages 10000] [--rules 50]

The messages are written to PostgreSQL encrypted (as sync stores them, bodies 5-50 KB for a fifth),
then loaded and decrypted once through rules.service (the "test this rule" path: with_rule_data +
rule_message), and the 50 rules are dry-run over them. Loading and evaluating are timed apart.
bench/rules_throughput.py measures the engine alone on in-memory messages.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from common import fresh_user, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50)
    args = parser.parse_args()
    setup_django()
    from django.utils import timezone

    from bench.rules_throughput import WORDS, build_rules
    from mail.models import Folder, MailAccount, Message
    from rules import engine, service

    rnd = random.Random(5)
    owner = fresh_user("bench-rules")
    account = MailAccount.objects.create(
        owner=owner, name="bench", email_address="me@example.test", imap_host="127.0.0.1", imap_username="u"
    )
    folder = Folder.objects.create(account=account, name="INBOX", special_use="inbox", sync_enabled=True)
    pool = " ".join(rnd.choices(WORDS, k=300_000))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    started, batch = time.perf_counter(), []
    for n in range(args.messages):
        length = rnd.randint(5_000, 50_000) if rnd.random() < 0.2 else rnd.randint(200, 3_000)
        offset = rnd.randrange(len(pool) - length)
        batch.append(
            Message(
                owner=owner,
                account=account,
                folder=folder,
                uidvalidity=1,
                uid=n + 1,
                size=length + 800,
                sort_date=start + timedelta(minutes=n),
                from_address=f"{rnd.choice(WORDS)}@example{n % 13}.test",
                to_addresses=["me@example.test"],
                subject=" ".join(rnd.choices(WORDS, k=6)),
                text_body=pool[offset : offset + length],
                list_id="list.example" if rnd.random() < 0.25 else "",
            )  # fmt: skip
        )
        if len(batch) == 500:
            Message.objects.bulk_create(batch)
            batch = []
    Message.objects.bulk_create(batch)
    print(f"stored {args.messages} messages in {time.perf_counter() - started:.0f} s")

    rules = build_rules(args.rules, rnd)
    ctx = service.OwnerRules(owner.pk, rules, {}, {})
    t = time.perf_counter()
    stored = list(service.with_rule_data(Message.objects.filter(owner=owner).order_by("-sort_date")))
    rule_messages = [service.rule_message(m, ctx) for m in stored]
    load = time.perf_counter() - t
    t = time.perf_counter()
    matched = sum(engine.dry_run(r, rule_messages, timezone.now(), max_listed=100).matched_count for r in rules)
    evaluate = time.perf_counter() - t
    evaluations = len(rules) * len(rule_messages)
    print(f"load + decrypt {len(rule_messages)} messages: {load:.2f} s")
    print(
        f"dry-run of {len(rules)} rules: {evaluations} evaluations in {evaluate:.2f} s = "
        f"{evaluations / evaluate:,.0f}/s; with loading {evaluations / (evaluate + load):,.0f}/s "
        f"(target >= 20,000/s); {matched} matches"
    )
    account.delete()
    owner.delete()


if __name__ == "__main__":
    main()
