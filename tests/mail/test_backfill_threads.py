"""manage.py backfill_threads: conversation keys from stored headers, resumable, strict users skipped."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from mail.models import Message
from tests.plugins.accounts import create_test_user
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db


def _run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_backfill_threads_is_resumable(five_synced):
    expected = dict(Message.objects.values_list("pk", "thread_key"))
    assert all(expected.values())
    Message.objects.update(thread_key="")
    assert "Updated the thread key of 5 message(s)." in _run("backfill_threads", "--user", "alice")
    assert dict(Message.objects.values_list("pk", "thread_key")) == expected
    assert "Updated the thread key of 0 message(s)." in _run("backfill_threads")
    assert "Updated the thread key of 0 message(s)." in _run("backfill_threads", "--all", "--since", "2020-01-01")
    Message.objects.update(thread_key="wrong")
    assert "of 0 message(s)" in _run("backfill_threads")  # set keys are left alone without --all
    assert "of 5 message(s)" in _run("backfill_threads", "--all")
    assert dict(Message.objects.values_list("pk", "thread_key")) == expected


def test_backfill_threads_skips_logged_out_strict_users(db, dovecot, imap_user):
    from accounts import keyring

    carol = create_test_user("carol", strict=True)
    dovecot.deliver(imap_user, make_raw(1))
    assert run_sync(create_account(carol.user, imap_user, dovecot)).status == "success"
    Message.objects.update(thread_key="")
    keyring.drop_session_key(carol.user)
    assert "0 message(s) (1 message(s) of logged-out strict-mode users skipped)" in _run("backfill_threads")
