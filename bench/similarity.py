"""Similar messages and "find messages about ..." on 20,000 messages of one user: fit time and latency.

    .venv/bin/python bench/similarity.py [--messages 20000] [--queries 200] [--reuse [--refit]]

Messages are generated on 40 topics (each its own words, plus words common to all mail drawn from a
Zipf-like vocabulary), indexed with the real blind index and stored directly (no IMAP, no analysis).
Then the topic projection is fitted (analysis.similarity.fit: reading ids and subjects, TF-IDF, SVD,
writing 20,000 encrypted vectors), and "similar" and "about" queries are timed as the views run
them: ranking plus the page's rows with their subjects decrypted. The first query of a process
decrypts the user's vectors (cold); later ones use the in-process matrix (warm).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from common import bench_mailbox, setup_django, store_messages

TOPICS = 40
TOPIC_WORDS = 60
COMMON = 20_000


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep the messages (and fit) of an earlier run")
    parser.add_argument("--refit", action="store_true", help="with --reuse: time the fit again")
    args = parser.parse_args()
    setup_django()
    import sklearn.decomposition  # noqa: F401  (a worker has it imported already; not part of the fit's time)

    from accounts.models import User
    from analysis import similarity
    from analysis.models import TopicModel
    from mail.models import MailAccount, Message

    rnd = random.Random(5)
    topic_words = [[f"t{t}w{i}" for i in range(TOPIC_WORDS)] for t in range(TOPICS)]
    common = [f"c{i}" for i in range(COMMON)]
    weights = [1 / (rank + 1) for rank in range(COMMON)]

    owner = User.objects.filter(username="bench-similar").first()
    reuse = args.reuse and owner and Message.objects.filter(owner=owner).count() == args.messages
    if reuse:
        print(f"reusing the {args.messages} messages of an earlier run (--reuse)")
    else:
        owner, account, folder = bench_mailbox("bench-similar")
        key = similarity.search_key_for(owner.pk)
        start = datetime(2020, 1, 1, tzinfo=UTC)

        def generated():
            for n in range(args.messages):
                topic = rnd.randrange(TOPICS)
                length = rnd.randint(60, 300)
                words = [rnd.choice(topic_words[topic]) if rnd.random() < 0.4 else None for _ in range(length)]
                fill = iter(rnd.choices(common, weights, k=length))
                body = " ".join(w or next(fill) for w in words)
                subject = " ".join(rnd.sample(topic_words[topic], 3) + [f"n{n}"])
                sender = f"s{rnd.randrange(500)}@example.test"
                yield Message(
                    owner=owner, account=account, folder=folder, uidvalidity=1, uid=n + 1,
                    sort_date=start + timedelta(minutes=n), from_address=sender, subject=subject,
                    search_ids=key.message_ids(subject, body, [sender]),
                )  # fmt: skip

        store_messages(generated(), args.messages)

    if not reuse or args.refit or not TopicModel.objects.filter(owner=owner, version__gt=0).exists():
        result = similarity.fit(owner.pk)
        print(f"fit: {result.status}, {result.n_messages} messages, {result.vectors} vectors written, "
              f"{result.seconds:.1f} s in all")  # fmt: skip
    model = TopicModel.objects.get(owner=owner)
    print(f"projection: {model.dims} dimensions, state {len(bytes(model.state)) / 1e6:.1f} MB encrypted")

    ids = list(Message.objects.filter(owner=owner).values_list("pk", flat=True))
    similarity.forget_cache()
    message = Message.objects.get(pk=rnd.choice(ids))
    t = time.perf_counter()
    similarity.ranked_messages(owner, similarity.similar_to(owner, message))
    cold = (time.perf_counter() - t) * 1000
    print(f"cold 'similar' (decrypting {len(ids)} vectors into the process cache): {cold:.0f} ms")

    def topic_of(subject: str) -> str:
        return subject.split("w", 1)[0]

    similar_times, about_times, hits, similar_ok, about_ok = [], [], [], [], []
    for _ in range(args.queries):
        message = Message.objects.only("id", "owner_id", "subject").get(pk=rnd.choice(ids))
        t = time.perf_counter()
        rows = similarity.ranked_messages(owner, similarity.similar_to(owner, message))
        for row in rows:
            _ = row.subject
        similar_times.append(time.perf_counter() - t)
        similar_ok.extend(topic_of(row.subject) == topic_of(message.subject) for row in rows)
        topic = rnd.randrange(TOPICS)
        query = " ".join(rnd.sample(topic_words[topic], rnd.randint(1, 3)))
        t = time.perf_counter()
        ranking = similarity.about(owner, query)
        page = similarity.messages_page(owner, ranking, 1, 50)
        for row in page.object_list:
            _ = row.subject
        about_times.append(time.perf_counter() - t)
        about_ok.extend(topic_of(row.subject) == f"t{topic}" for row in page.object_list[:10])
        hits.append(len(ranking.ids))
    print(f"'similar' (top 5): p50 {pct(similar_times, 0.5):.1f} ms, p95 {pct(similar_times, 0.95):.1f} ms")
    print(f"'about' (page of 50 of up to 1,000 ranked): p50 {pct(about_times, 0.5):.1f} ms, "
          f"p95 {pct(about_times, 0.95):.1f} ms, median ranked {sorted(hits)[len(hits) // 2]}")  # fmt: skip
    print(f"same topic: {100 * sum(similar_ok) / max(1, len(similar_ok)):.0f} % of 'similar' results, "
          f"{100 * sum(about_ok) / max(1, len(about_ok)):.0f} % of the top 10 'about' results")  # fmt: skip
    if not args.reuse:
        MailAccount.objects.filter(owner=owner).delete()
        owner.delete()


if __name__ == "__main__":
    main()
