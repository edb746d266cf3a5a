"""POP3 accounts against Dovecot's real POP3 server: the protocol layer and the incremental sync by UIDL."""

import poplib
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from mail import pop3, signals
from mail.models import MailAccount, Message, Pop3Seen, SyncRun
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db


def pop3_config(dovecot, user, **overrides) -> pop3.ServerConfig:
    values = {
        "host": dovecot.host,
        "port": dovecot.pop3_port,
        "security": "plain",
        "username": user.username,
        "password": user.password,
        "timeout": 5,
    }
    values.update(overrides)
    return pop3.ServerConfig(**values)


def pop3_account(owner, imap_user, dovecot, **overrides) -> MailAccount:
    fields = {"protocol": "pop3", "imap_port": dovecot.pop3_port, "imap_security": "plain"}
    fields.update(overrides)
    return create_account(owner, imap_user, dovecot, **fields)


def server_uidls(dovecot, user) -> list[str]:
    """What the server lists, asked with plain poplib (not our code)."""
    client = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5)
    try:
        client.user(user.username)
        client.pass_(user.password)
        return [line.split()[1].decode() for line in client.uidl()[1]]
    finally:
        client.quit()


def seed(dovecot, user, count, start=0):
    for n in range(start, start + count):
        dovecot.deliver(user, make_raw(n))


# --- the protocol layer ------------------------------------------------------------------------------


def test_listing_and_retrieving_over_plain_stls_and_pop3s(dovecot, imap_user, settings):
    seed(dovecot, imap_user, 2)
    with pop3.Pop3Session(pop3_config(dovecot, imap_user)) as session:
        listed = session.listing()
        assert [m.number for m in listed] == [1, 2] and all(len(m.uidl) == 16 for m in listed)
        raw = session.retrieve(1)
    assert b"Subject: Message number 0\r\n" in raw and raw.endswith(b"\r\n")
    assert [m.uidl for m in listed] == server_uidls(dovecot, imap_user)

    untrusted = pop3.check_connection(pop3_config(dovecot, imap_user, port=dovecot.pop3_ssl_port, security="ssl"))
    assert not untrusted.ok and untrusted.kind == "tls" and "not trusted" in untrusted.message
    settings.MAILHELPER_EXTRA_CA_FILE = str(dovecot.cert_path)
    for port, security in ((dovecot.pop3_ssl_port, "ssl"), (dovecot.pop3_port, "starttls")):
        report = pop3.check_connection(pop3_config(dovecot, imap_user, port=port, security=security))
        assert report.ok and report.messages == 2, (security, report.message)


@pytest.mark.parametrize(
    ("overrides", "kind", "phrase"),
    [
        ({"password": "not-the-password"}, "auth", "rejected the user name or password"),
        ({"host": "no-such-host.invalid"}, "dns", "could not be found"),
        ({"port": 1}, "refused", "refused the connection"),
        ({"security": "ssl"}, "tls", "TLS"),  # TLS spoken to the plain-text port
    ],
)
def test_each_failure_gets_the_precise_kind_imap_uses(dovecot, imap_user, overrides, kind, phrase):
    report = pop3.check_connection(pop3_config(dovecot, imap_user, **overrides))
    assert not report.ok and report.kind == kind and phrase in report.message
    assert imap_user.password not in report.message and "POP3" in report.message or kind == "auth"


def test_a_pop3_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection, never sends a greeting
    try:
        cfg = pop3.ServerConfig("127.0.0.1", listener.getsockname()[1], "plain", "u", "p", timeout=1)
        report = pop3.check_connection(cfg)
    finally:
        listener.close()
    assert not report.ok and report.kind == "timeout"


def test_the_address_policy_applies_to_pop3(dovecot, imap_user, default_policy):
    report = pop3.check_connection(pop3_config(dovecot, imap_user))
    assert not report.ok and report.kind == "policy"


# --- the sync ----------------------------------------------------------------------------------------


def test_first_sync_stores_the_inbox_then_only_new_mail_comes(dovecot, imap_user, alice):
    seed(dovecot, imap_user, 5)
    account = pop3_account(alice.user, imap_user, dovecot)

    first = run_sync(account)
    assert first.status == SyncRun.Status.SUCCESS, first.error
    assert (first.messages_new, first.folders_total, first.folders_done) == (5, 1, 1)
    assert first.bytes_fetched > 5 * 1024
    inbox = account.folders.get()
    assert (inbox.name, inbox.special_use, inbox.server_exists) == ("INBOX", "inbox", 5)
    message = next(m for m in inbox.messages.all() if m.subject == "Message number 3")  # decrypted with alice's key
    assert "body of message 3" in message.text_body and message.from_address == "sender@example.test"
    assert message.uid is None and not message.seen and message.date is not None
    assert message.analysis.state == "pending"  # queued for analysis in the same transaction
    # The UIDL state: exactly the server's UIDLs, each pointing at its stored message.
    uidls = server_uidls(dovecot, imap_user)
    assert len(uidls) == 5  # left on the server
    seen = dict(Pop3Seen.objects.filter(account=account).values_list("uidl", "message_id"))
    assert sorted(seen) == sorted(uidls) and set(seen.values()) == set(inbox.messages.values_list("pk", flat=True))

    quiet = run_sync(account)
    assert (quiet.status, quiet.messages_new, quiet.bytes_fetched) == (SyncRun.Status.SUCCESS, 0, 0)

    seed(dovecot, imap_user, 1, start=50)
    third = run_sync(account)
    assert third.messages_new == 1
    assert Message.objects.filter(account=account).count() == 6
    newest = Message.objects.filter(account=account).order_by("-created_at").first()
    assert newest.subject == "Message number 50"
    assert Pop3Seen.objects.filter(account=account).count() == 6
    account.refresh_from_db()
    assert account.status == "ok" and account.last_sync_at is not None


def test_messages_stay_on_the_server_unless_deletion_after_days_is_chosen(dovecot, imap_user, alice):
    seed(dovecot, imap_user, 4)
    account = pop3_account(alice.user, imap_user, dovecot)
    run_sync(account)
    Pop3Seen.objects.filter(account=account).update(stored_at=timezone.now() - timedelta(days=30))
    assert run_sync(account).messages_expunged == 0
    assert len(server_uidls(dovecot, imap_user)) == 4  # no deletion without the setting

    account.pop3_delete_after_days = 7
    account.save()
    before = server_uidls(dovecot, imap_user)
    old, recent = before[:2], before[2:]
    Pop3Seen.objects.filter(account=account, uidl__in=recent).update(stored_at=timezone.now() - timedelta(days=6))
    Pop3Seen.objects.filter(account=account, uidl__in=old).update(stored_at=timezone.now() - timedelta(days=8))
    seed(dovecot, imap_user, 1, start=10)  # new: stored in this run, far too young to delete

    run = run_sync(account)
    assert (run.status, run.messages_new, run.messages_expunged) == (SyncRun.Status.SUCCESS, 1, 2)
    after = server_uidls(dovecot, imap_user)
    assert len(after) == 3 and set(recent) <= set(after) and not set(old) & set(after)
    # The local copies stay, visible like any message; the state remembers what we deleted.
    assert Message.objects.filter(account=account, expunged_at__isnull=True).count() == 5
    deleted = Pop3Seen.objects.filter(account=account, deleted_at__isnull=False)
    assert set(deleted.values_list("uidl", flat=True)) == set(old)
    again = run_sync(account)
    assert (again.messages_new, again.messages_expunged) == (0, 0)
    assert set(Pop3Seen.objects.filter(account=account).values_list("uidl", flat=True)) == set(after)


def test_a_wrong_password_fails_the_run_and_asks_for_attention(dovecot, imap_user, alice):
    account = pop3_account(alice.user, imap_user, dovecot, imap_password="wrong password")
    run = run_sync(account)
    assert run.status == SyncRun.Status.FAILED and "rejected the user name or password" in run.error
    account.refresh_from_db()
    assert account.status == MailAccount.Status.NEEDS_ATTENTION and account.status_message.startswith("Login failed")
    assert "wrong password" not in run.error + account.status_message


def test_an_unreachable_server_is_retryable(dovecot, imap_user, alice):
    from mail.sync import sync_account

    account = pop3_account(alice.user, imap_user, dovecot, imap_port=1)
    outcome = sync_account(account.pk)
    assert outcome.retryable and outcome.run.status == SyncRun.Status.FAILED and "refused" in outcome.run.error


def test_a_sync_that_dies_between_batches_loses_nothing_and_stores_nothing_twice(dovecot, imap_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 2
    seed(dovecot, imap_user, 7)
    account = pop3_account(alice.user, imap_user, dovecot)
    batches = []

    def die_in_the_second_batch(sender, messages, **kwargs):
        batches.append(len(messages))
        if len(batches) == 2:
            raise RuntimeError("worker killed")  # inside the batch's transaction, after its inserts

    signals.messages_stored.connect(die_in_the_second_batch, dispatch_uid="test-die")
    try:
        with pytest.raises(RuntimeError):
            run_sync(account)
    finally:
        signals.messages_stored.disconnect(dispatch_uid="test-die")
    # The first batch is committed with its UIDLs; the second went back with its UIDLs.
    assert Message.objects.filter(account=account).count() == 2
    assert Pop3Seen.objects.filter(account=account).count() == 2
    assert account.sync_runs.get().status == SyncRun.Status.FAILED

    rerun = run_sync(account)
    assert rerun.status == SyncRun.Status.SUCCESS and rerun.messages_new == 5
    ids = list(Message.objects.filter(account=account).values_list("message_id", flat=True))
    assert len(ids) == len(set(ids)) == 7
    assert Pop3Seen.objects.filter(account=account).count() == 7


def test_a_connection_lost_mid_sync_resumes_where_it_stopped(dovecot, imap_user, alice, settings, monkeypatch):
    settings.MAILHELPER_SYNC_BATCH = 2
    seed(dovecot, imap_user, 6)
    account = pop3_account(alice.user, imap_user, dovecot)
    real_retrieve = pop3.Pop3Session.retrieve
    calls = []

    def drop_on_the_fourth(self, number):
        calls.append(number)
        if len(calls) == 4:
            self.client.sock.shutdown(socket.SHUT_RDWR)  # the network goes away in the middle of the second batch
        return real_retrieve(self, number)

    monkeypatch.setattr(pop3.Pop3Session, "retrieve", drop_on_the_fourth)
    run = run_sync(account)
    assert run.status == SyncRun.Status.FAILED and run.messages_new == 2
    monkeypatch.undo()
    rerun = run_sync(account)
    assert rerun.messages_new == 4
    ids = list(Message.objects.filter(account=account).values_list("message_id", flat=True))
    assert len(ids) == len(set(ids)) == 6
