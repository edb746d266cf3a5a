"""Where a page request's CPU goes: the list, message and dashboard pages profiled in-process.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/11 BENCH_BROKER_URL=redis://127.0.0.1:6379/12 \
    .venv/bin/python bench/page_profile.py [--messages 200 --requests 200] [--pages list] [--top 30] [--callees REGEX]

Issue #15 asks where the ~17 ms of gunicorn CPU per request go (middleware, session and OTP lookups,
key unwrap, decrypting rows, template rendering) before removing what is not needed. One user with a
synced account (mail from a local Dovecot, analysed) is browsed through Django's full handler and
middleware stack (the test client, no network); cProfile attributes the time. Printed per page: the
CPU per request, then each part's share: time inside functions of these modules (inclusive, the
outermost call only, so parts do not add up twice).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import time
from collections import defaultdict
from pathlib import Path

from common import setup_django

#: part -> path fragments of the code it is; a frame's own time (not its callees') goes to the first match.
PARTS = {
    "templates": ("django/template/", "django/templatetags/", "templatetags/"),
    "translation (gettext)": ("django/utils/translation", "gettext.py"),
    "SQL: ORM compiling": ("django/db/models/sql/", "django/db/models/query", "django/db/models/expressions"),
    "SQL: driver and wire": ("psycopg/", "django/db/backends/"),
    "model instances": ("django/db/models/base.py", "django/db/models/fields/"),
    "decryption (AES-GCM)": ("cryptography/", "accounts/fields", "accounts/crypto"),
    "data key unwrap and cache": ("accounts/keyring",),
    "Redis (session, cache)": ("redis/", "django_redis/", "django/core/cache/"),
    "session": ("django/contrib/sessions/",),
    "auth and OTP": ("django/contrib/auth/", "django_otp/"),
    "middleware (other)": (
        "django/middleware/",
        "whitenoise/",
        "django_ratelimit/",
        "mailhelper/metrics",
        "middleware",
    ),
    "URL routing and request/response": ("django/urls/", "django/http/", "django/core/handlers/"),
    "test client (not in production)": ("django/test/",),
    "our code (views, services)": ("/mail/", "/analysis/", "/tags/", "/rules/", "/accounts/", "/core/"),
    "other libraries": ("site-packages/",),
    "Python stdlib": ("/lib/python3",),
    "C built-ins (str, dict, re ...)": ("~",),
}


def attribute(stats: pstats.Stats) -> dict[str, float]:
    """Each part's own time (cProfile's tottime): the parts add up to the whole request."""
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, _func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        part = next((p for p, fragments in PARTS.items() if any(f in filename for f in fragments)), "other")
        totals[part] += tottime
    return dict(totals)


def cpu_per_request(client, url: str, requests: int, rounds: int) -> float:
    """CPU seconds per request of the least disturbed of `rounds` rounds.

    On a machine shared with other work, a round that shared the CPU caches with another process
    costs more CPU for the same requests; the cheapest round is the closest to the page's own cost.
    """
    per_round = max(1, requests // rounds)
    costs = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(per_round):
            client.get(url)
        costs.append((time.process_time() - started) / per_round)
    return min(costs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="the unprofiled figure is the cheapest of these rounds")
    parser.add_argument("--cpu-only", action="store_true", help="only the unprofiled figure (old vs new runs)")
    parser.add_argument("--top", type=int, default=0, help="also print the N functions with the most own time")
    parser.add_argument("--callees", default="", help="print what functions matching this regex call, e.g. rows.py")
    parser.add_argument("--pages", nargs="+", choices=["list", "message", "dashboard", "search"], default=None)
    parser.add_argument("--sort", default="tottime", help="the order of --top: tottime (own time) or cumulative")
    parser.add_argument("--dump", default="", help="write each page's HTML (CSRF tokens blanked) into this folder")
    parser.add_argument("--queries", action="store_true", help="print the SQL of one request per page")
    args = parser.parse_args()
    setup_django("mailhelper_profile")

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from accounts.models import User
    from analysis import pipeline
    from mail.models import MailAccount, Message
    from mailhelper.local_dovecot import DovecotServer
    from tests.plugins.accounts import create_test_user, verified_client
    from tests.plugins.mail import make_raw, run_sync

    server = DovecotServer.create()
    server.start()
    try:
        MailAccount.objects.all().delete()
        User.objects.filter(username="bench-profile").delete()
        person = create_test_user("bench-profile")
        imap_user = server.add_user()
        for i in range(args.messages):
            server.deliver(imap_user, make_raw(i, body_kb=4, html=i % 5 == 0))
        account = MailAccount.objects.create(
            owner=person.user, name="profile", email_address="me@example.test", imap_host=server.host,
            imap_port=server.port, imap_security="plain", imap_username=imap_user.username,
            imap_password=imap_user.password,
        )  # fmt: skip
        assert run_sync(account).status == "success"
        pipeline.analyse_pending(account.pk)  # scores, summaries and tags, as the analysis worker would
        message = Message.objects.filter(account=account).order_by("-sort_date").first()
        client: Client = verified_client(person, HTTP_HOST="localhost")
        pages = {
            "list": reverse("mail:list"),
            "message": reverse("mail:message", args=[message.pk]),
            "dashboard": reverse("mail:dashboard"),
            "search": reverse("mail:search") + "?q=message",
        }
        for name, url in pages.items():
            if args.pages and name not in args.pages:
                continue
            for _ in range(10):  # warm caches, templates, the key cache
                assert client.get(url).status_code == 200
            if args.dump:
                html = client.get(url).content.decode()
                html = re.sub(r'(csrfmiddlewaretoken" value=|"X-CSRFToken": )"[^"]+"', r'\1""', html)
                Path(args.dump, f"{name}.html").write_text(html)
            if args.queries:
                with CaptureQueriesContext(connection) as captured:
                    client.get(url)
                print(f"{name}: {len(captured)} queries")
                for query in captured:
                    print(f"  {query['sql'][:300]}")
            per_request = cpu_per_request(client, url, args.requests, args.rounds)
            if args.cpu_only:
                print(f"{name}: {per_request * 1000:.1f} ms CPU per request (unprofiled, cheapest round)")
                continue
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(args.requests):
                client.get(url)
            profiler.disable()
            stats = pstats.Stats(profiler)
            parts = attribute(stats)
            whole = sum(parts.values()) or 1.0
            print(f"{name}: {per_request * 1000:.1f} ms CPU per request (unprofiled, cheapest round); profiled:")
            for part, seconds in sorted(parts.items(), key=lambda item: -item[1]):
                print(f"  {part:<34} {seconds / whole * 100:5.1f} %  ~{seconds / whole * per_request * 1000:5.2f} ms")
            if args.top:
                stats.sort_stats(args.sort).print_stats(args.top)
            if args.callees:
                stats.print_callees(args.callees)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
