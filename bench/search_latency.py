"""Keyword search latency on 100,000 messages of one user (issue 6 target: p95 < 100 ms).

    .venv/bin/python bench/search_latency.py [--messages 100000] [--queries 200] [--reuse] [--slowest 10]

Messages get blind-index ids drawn from a Zipf-like vocabulary (as real mail has a few very common
words and many rare ones), inserted directly (no IMAP); queries of one to three words are then
timed as the search page runs them: analysis.search.search(), the page's capped count and first page
through mail.paging.CappedPaginator, and the decryption of what the page shows.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from common import bench_mailbox, setup_django, store_messages

VOCABULARY = 50_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep the messages of an earlier run")
    parser.add_argument("--slowest", type=int, default=0, help="print the N slowest queries and how they ran")
    args = parser.parse_args()
    setup_django()

    from accounts.models import User
    from analysis.search import SearchFilters, search
    from mail.models import Message
    from mail.search_tokens import search_key_for

    existing = User.objects.filter(username="bench-search").first()
    if args.reuse and existing and Message.objects.filter(owner=existing).count() == args.messages:
        print(f"reusing the {args.messages} messages stored by an earlier run (--reuse)")
        timed_queries(existing, args, search, SearchFilters)
        return
    owner, account, folder = bench_mailbox("bench-search")
    key = search_key_for(owner.pk)
    words = [f"w{i}" for i in range(VOCABULARY)]
    weights = [1 / (rank + 1) for rank in range(VOCABULARY)]
    rnd = random.Random(3)
    start = datetime(2020, 1, 1, tzinfo=UTC)

    def generated():
        for n in range(args.messages):
            tokens = set(rnd.choices(words, weights, k=rnd.randint(40, 400)))
            yield Message(
                owner=owner, account=account, folder=folder, uidvalidity=1, uid=n + 1,
                sort_date=start + timedelta(minutes=n), search_ids=key.token_ids(tokens), subject=f"m{n}",
            )  # fmt: skip

    store_messages(generated(), args.messages)

    timed_queries(owner, args, search, SearchFilters)
    if not args.reuse:
        account.delete()
        owner.delete()


def timed_queries(owner, args, search, SearchFilters) -> None:
    from analysis.views.search import COUNT_CAP, PAGE_SIZE
    from mail.paging import CappedPaginator

    rnd = random.Random(11)
    words = [f"w{i}" for i in range(VOCABULARY)]
    weights = [1 / (rank + 1) for rank in range(VOCABULARY)]
    timings, hits, runs = [], [], []
    for _ in range(args.queries):
        query = " ".join(rnd.choices(words[:5000], weights[:5000], k=rnd.randint(1, 3)))
        t = time.perf_counter()
        results = search(owner, query, SearchFilters())
        page = CappedPaginator(results, PAGE_SIZE, cap=COUNT_CAP).get_page(1)  # as mail/views/search.py
        for message in page.object_list:
            _ = message.subject  # decrypt what the page shows
        elapsed = time.perf_counter() - t
        timings.append(elapsed)
        hits.append(page.paginator.count)
        runs.append((elapsed, query, page.paginator.count, getattr(results, "path", "")))
    for elapsed, query, count, path in sorted(runs, reverse=True)[: args.slowest]:
        print(f"  {elapsed * 1000:6.1f} ms  {count:5d} hits  {path or '-':12s} {query}")
    timings.sort()
    p = lambda q: timings[min(len(timings) - 1, int(q * len(timings)))] * 1000  # noqa: E731
    print(f"queries: {len(timings)}, median hits {statistics.median(hits):.0f}, max hits {max(hits)}")
    print(f"latency: p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, max {timings[-1] * 1000:.1f} ms  (target p95 < 100 ms)")


if __name__ == "__main__":
    main()
