"""Operator commands: check_deploy, backfill_analysis, backfill_threads."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from analysis.models import MessageAnalysis
from mail.models import Message
from tests.plugins.accounts import create_test_user
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db


def _check_deploy(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("check_deploy", *args, stdout=out, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def _line(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(name + " "))


def test_check_deploy_passes_with_the_test_settings_when_celery_is_skipped():
    code, output = _check_deploy("--skip-celery")
    assert code == 0, output
    for name in (
        "debug",
        "secret_key",
        "allowed_hosts",
        "secure_cookies",
        "sync_key",
        "database",
        "redis",
        "migrations",
    ):
        assert re.match(rf"{name}\s+OK\s+\S", _line(output, name)), output
    assert "celery" not in output and "All checks passed." in output


def test_check_deploy_fails_without_a_worker():
    code, output = _check_deploy()
    assert code == 1
    assert re.match(r"celery\s+FAIL\s+celery unreachable \(\w+\)", _line(output, "celery"))


@override_settings(
    DEBUG=True,
    SECRET_KEY="insecure-development-key-set-SECRET_KEY-in-production",
    ALLOWED_HOSTS=[],
    SESSION_COOKIE_SECURE=False,
    MAILHELPER_SYNC_KEY="",
    MAILHELPER_SYNC_KEY_FILE="",
)
def test_check_deploy_names_each_unsafe_setting():
    code, output = _check_deploy("--skip-celery")
    assert code == 1
    assert re.match(r"debug\s+FAIL\s+DEBUG is on", _line(output, "debug"))
    assert re.match(r"secret_key\s+FAIL\s+SECRET_KEY is the development default", _line(output, "secret_key"))
    assert re.match(r"allowed_hosts\s+FAIL\s+ALLOWED_HOSTS is empty", _line(output, "allowed_hosts"))
    assert re.match(r"secure_cookies\s+FAIL\s+SESSION_COOKIE_SECURE off", _line(output, "secure_cookies"))
    assert re.match(r"sync_key\s+FAIL\s+MAILHELPER_SYNC_KEY is not set", _line(output, "sync_key"))
    assert re.match(r"database\s+OK", _line(output, "database"))


@override_settings(SECRET_KEY="short", MAILHELPER_SYNC_KEY="bm90LWEta2V5")
def test_check_deploy_short_secret_and_malformed_sync_key():
    code, output = _check_deploy("--skip-celery")
    assert code == 1
    assert re.match(r"secret_key\s+FAIL\s+SECRET_KEY is too short", _line(output, "secret_key"))
    assert re.match(r"sync_key\s+FAIL\s+MAILHELPER_SYNC_KEY is not a valid sync key", _line(output, "sync_key"))
    assert "bm90LWEta2V5" not in output


@pytest.fixture
def synced(alice, dovecot, imap_user):
    for n in range(5):
        dovecot.deliver(imap_user, make_raw(n))
    account = create_account(alice.user, imap_user, dovecot)
    assert run_sync(account).status == "success"
    return account


def _run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_backfill_analysis_is_resumable(synced, bob):
    assert MessageAnalysis.objects.filter(owner=synced.owner, state="pending").count() == 5
    assert "Analysed 5 message(s), 0 failed." in _run("backfill_analysis", "--user", "alice")
    assert MessageAnalysis.objects.filter(owner=synced.owner, state="done").count() == 5
    assert "Analysed 0 message(s)" in _run("backfill_analysis")
    MessageAnalysis.objects.filter(owner=synced.owner).update(state="failed")
    assert "Analysed 0 message(s)" in _run("backfill_analysis")  # failed ones only with --failed
    assert "Analysed 5 message(s)" in _run("backfill_analysis", "--failed", "--since", "2025-12-31")
    assert "Analysed 0 message(s)" in _run("backfill_analysis", "--failed")
    assert "Analysed 5 message(s)" in _run("backfill_analysis", "--all")
    assert "Analysed 0 message(s)" in _run("backfill_analysis", "--user", "bob", "--all")
    with pytest.raises(CommandError, match="no user named"):
        _run("backfill_analysis", "--user", "nobody")


def test_backfill_threads_is_resumable(synced):
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
