"""Set-up shared by the benchmarks: a database and Redis database of their own, real services.

Benchmarks print their figures; they are not tests and assert nothing but their own sanity.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/x.py`, the bench folder comes first on the path; the project root must win
# so that `rules`, `mail`... are the apps, not scripts of the same name. The bench folder stays
# last: a spawned process (the sync's parsers) imports the script again and needs `common`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))


def setup_django(database: str = "mailhelper_bench") -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
    os.environ["CELERY_BROKER_URL"] = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/9")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("ensure_database", verbosity=0)
    call_command("migrate", verbosity=0, interactive=False)


@contextmanager
def timed(label: str, results: dict):
    started = time.perf_counter()
    yield
    results[label] = time.perf_counter() - started


def fresh_user(username: str):
    from accounts.models import User
    from tests.plugins.accounts import create_test_user

    User.objects.filter(username=username).delete()
    return create_test_user(username).user


def bench_mailbox(username: str):
    """A fresh user with one account and a synced INBOX, for benchmarks that store messages directly (no IMAP)."""
    from mail.models import Folder, MailAccount

    owner = fresh_user(username)
    account = MailAccount.objects.create(
        owner=owner, name="bench", email_address="me@example.test", imap_host="127.0.0.1", imap_username="u"
    )
    folder = Folder.objects.create(account=account, name="INBOX", special_use="inbox", sync_enabled=True)
    return owner, account, folder


def store_messages(messages, total: int, batch: int = 1000) -> None:
    """Insert generated messages as sync does (COPY, in batches), then refresh the planner's statistics."""
    from itertools import islice

    from django.db import connection

    from core.db.copy import copy_insert
    from mail.models import Message

    started = time.perf_counter()
    messages = iter(messages)
    while chunk := list(islice(messages, batch)):
        copy_insert(Message, chunk)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mail_message")
    print(f"inserted {total} messages in {time.perf_counter() - started:.0f} s")
