"""Push by IMAP IDLE (mail/idle.py, manage.py watch_mailboxes) against the real Dovecot.

The end-to-end test runs the watcher command and a real Celery worker: a message APPENDed by another
client is stored within 5 seconds. The others drive `Watcher` in-process with a recording callback,
so they see exactly which account the server announced and when connections start and stop.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest

from mail import idle
from mail.models import MailAccount, Message, SyncRun
from tests.plugins.celery_worker import ROOT, service_env
from tests.plugins.imap_helpers import connect
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return result


def _append(dovecot, imap_user, n: int) -> None:
    """Another client (a phone, an MTA) puts a message into INBOX."""
    client = connect(dovecot, imap_user)
    try:
        client.append("INBOX", "", None, make_raw(n))
    finally:
        client.logout()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []
        self.event = threading.Event()

    def __call__(self, account_id: uuid.UUID) -> None:
        self.seen.append(account_id)
        self.event.set()


@pytest.fixture
def watcher():
    started: list[idle.Watcher] = []

    def make(on_change, limit=100) -> idle.Watcher:
        w = idle.Watcher(idle.Shard(), limit, on_change)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


def test_a_message_appended_on_the_server_is_stored_within_five_seconds(
    alice, dovecot, imap_user, celery_worker, tmp_path
):
    account = create_account(alice.user, imap_user, dovecot)
    assert run_sync(account).status == "success"
    log_path = tmp_path / "watcher.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "watch_mailboxes"],
            cwd=ROOT, env=service_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait(lambda: "1 connection(s)" in log_path.read_text(), 30, "the watcher to connect")
        time.sleep(0.5)  # the connection logs in and enters IDLE right after it is started
        for n in range(2):  # twice: the second shows that the connection went back to IDLE
            appended = time.monotonic()
            _append(dovecot, imap_user, 100 + n)
            _wait(lambda n=n: Message.objects.filter(folder__account=account).count() == n + 1, 5, "the push sync")
            assert time.monotonic() - appended < 5
        assert SyncRun.objects.filter(account=account, trigger=SyncRun.Trigger.PUSH, status="success").exists()
    finally:
        process.terminate()
        process.wait(20)
    assert process.returncode == 0, log_path.read_text()
    text = log_path.read_text()
    assert "Stopped." in text and imap_user.password not in text


def test_the_announced_account_is_the_one_that_got_mail(alice, bob, dovecot, watcher):
    users = [dovecot.add_user(), dovecot.add_user()]
    accounts = [create_account(alice.user, users[0], dovecot), create_account(bob.user, users[1], dovecot)]
    recorder = Recorder()
    w = watcher(recorder)
    assert w.reconcile() == {"watching": 2, "started": 2, "stopped": 0}
    _wait(lambda: all(c.connected.is_set() for c in w.connections.values()), 10, "both connections")
    _append(dovecot, users[1], 1)
    assert recorder.event.wait(5)
    time.sleep(0.3)
    assert set(recorder.seen) == {accounts[1].pk}


def test_accounts_added_changed_disabled_and_deleted_are_picked_up(alice, dovecot, imap_user, watcher):
    recorder = Recorder()
    w = watcher(recorder)
    assert w.reconcile()["watching"] == 0
    account = create_account(alice.user, imap_user, dovecot)
    assert w.reconcile() == {"watching": 1, "started": 1, "stopped": 0}
    first = w.connections[account.pk]
    assert w.reconcile() == {"watching": 1, "started": 0, "stopped": 0}, "an unchanged account keeps its connection"

    MailAccount.objects.filter(pk=account.pk).update(imap_port=dovecot.ssl_port, imap_security="ssl")
    assert w.reconcile() == {"watching": 1, "started": 1, "stopped": 1}, "changed server settings reconnect"
    first.join(10)
    assert not first.is_alive()

    MailAccount.objects.filter(pk=account.pk).update(enabled=False)
    assert w.reconcile() == {"watching": 0, "started": 0, "stopped": 1}
    MailAccount.objects.filter(pk=account.pk).update(enabled=True, status=MailAccount.Status.NEEDS_ATTENTION)
    assert w.reconcile()["watching"] == 0, "a refused password is not retried by push"
    MailAccount.objects.filter(pk=account.pk).update(status=MailAccount.Status.OK)
    assert w.reconcile()["watching"] == 1
    connection = w.connections[account.pk]
    account.delete()
    assert w.reconcile() == {"watching": 0, "started": 0, "stopped": 1}
    connection.join(10)
    assert not connection.is_alive(), "stop() ends a connection blocked in IDLE at once"


def test_shards_split_the_accounts_and_the_budget_bounds_them(alice, dovecot):
    accounts = [create_account(alice.user, dovecot.add_user(), dovecot, name=f"a{i}") for i in range(6)]
    halves = [idle.accounts_to_watch(idle.Shard(i, 2), 100) for i in range(2)]
    assert set(halves[0]) | set(halves[1]) == {a.pk for a in accounts}
    assert not set(halves[0]) & set(halves[1])
    assert len(idle.accounts_to_watch(idle.Shard(), 4)) == 4
    with pytest.raises(ValueError):
        idle.Shard(2, 2)


def test_a_dropped_connection_reconnects_and_still_announces(alice, dovecot, imap_user, watcher):
    account = create_account(alice.user, imap_user, dovecot)
    recorder = Recorder()
    w = watcher(recorder)
    w.reconcile()
    connection = w.connections[account.pk]
    _wait(connection.connected.is_set, 10, "the connection")
    with connection._lock:  # the server (or a NAT box) drops the connection
        connection._session.client.socket().shutdown(2)
    _wait(lambda: not connection.connected.is_set(), 10, "the drop to be noticed")
    _wait(connection.connected.is_set, 10, "the reconnect")
    _append(dovecot, imap_user, 1)
    assert recorder.event.wait(5)
    assert recorder.seen[0] == account.pk


def test_idle_is_reissued_before_the_server_may_drop_it(alice, dovecot, imap_user, watcher, monkeypatch):
    """RFC 2177: re-issue IDLE at least every 29 minutes; here every second, and mail still comes."""
    monkeypatch.setattr(idle, "REISSUE_SECONDS", 1.0)
    create_account(alice.user, imap_user, dovecot)
    recorder = Recorder()
    w = watcher(recorder)
    w.reconcile()
    connection = next(iter(w.connections.values()))
    _wait(connection.connected.is_set, 10, "the connection")
    time.sleep(2.5)  # two re-issues
    assert connection.connected.is_set() and connection.is_alive()
    _append(dovecot, imap_user, 1)
    assert recorder.event.wait(5)


def test_a_burst_of_news_becomes_one_sync(five_synced, celery_worker):
    """One delivery brings EXISTS and FETCH, a burst many more: they fall into one pushed sync."""
    from mail import tasks
    from tests.plugins.celery_worker import wait_until_worker_idle

    queued = [tasks.queue_push_sync(str(five_synced.pk)) for _ in range(6)]
    assert queued == [True] + [False] * 5
    _wait(lambda: SyncRun.objects.filter(account=five_synced, trigger=SyncRun.Trigger.PUSH).exists(), 10, "the sync")
    wait_until_worker_idle()
    assert SyncRun.objects.filter(account=five_synced, trigger=SyncRun.Trigger.PUSH).count() == 1
    assert tasks.queue_push_sync(str(five_synced.pk)) is True, "news after the sync started get their own"
    wait_until_worker_idle()


def test_the_watcher_command_refuses_a_bad_shard():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="INDEX/COUNT"):
        call_command("watch_mailboxes", "--shard", "x", "--once")


def test_no_password_in_the_watcher_threads_after_login(alice, dovecot, imap_user, watcher):
    create_account(alice.user, imap_user, dovecot)
    w = watcher(Recorder())
    w.reconcile()
    connection = next(iter(w.connections.values()))
    _wait(connection.connected.is_set, 10, "the connection")
    assert connection._session.config.password == ""
    assert imap_user.password not in repr(vars(connection))
