"""POP3 accounts against Dovecot's real POP3 server: the protocol layer and the incremental sync by UIDL."""

import poplib
import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.stored_text import render
from mail import actions, pop3, signals
from mail.models import MailAccount, Message, PendingAction, Pop3Seen, SyncRun
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_pop3_account, make_raw, run_sync

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
    account = create_pop3_account(alice.user, imap_user, dovecot)

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
    account = create_pop3_account(alice.user, imap_user, dovecot)
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
    account = create_pop3_account(alice.user, imap_user, dovecot, imap_password="wrong password")
    run = run_sync(account)
    assert run.status == SyncRun.Status.FAILED and "rejected the user name or password" in run.error
    account.refresh_from_db()
    assert account.status == MailAccount.Status.NEEDS_ATTENTION
    assert render(account.status_message).startswith("Login failed")
    assert "wrong password" not in run.error + account.status_message


def test_an_unreachable_server_is_retryable(dovecot, imap_user, alice):
    from mail.sync import sync_account

    account = create_pop3_account(alice.user, imap_user, dovecot, imap_port=1)
    outcome = sync_account(account.pk)
    assert outcome.retryable and outcome.run.status == SyncRun.Status.FAILED and "refused" in outcome.run.error


def test_a_sync_that_dies_between_batches_loses_nothing_and_stores_nothing_twice(dovecot, imap_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 2
    seed(dovecot, imap_user, 7)
    account = create_pop3_account(alice.user, imap_user, dovecot)
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
    account = create_pop3_account(alice.user, imap_user, dovecot)
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


# --- pages, IMAP-only actions, the watcher and beat ----------------------------------------------------


def pop3_form(imap_user, dovecot, **overrides):
    data = {
        "name": "Old provider",
        "email_address": "me@example.test",
        "protocol": "pop3",
        "imap_host": dovecot.host,
        "imap_port": dovecot.pop3_port,
        "imap_security": "plain",
        "imap_username": imap_user.username,
        "imap_password_input": imap_user.password,
        "smtp_host": "",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": "",
        "sync_interval_minutes": 5,
        "pop3_delete_after_days": "",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_adding_a_pop3_account_tests_the_connection_and_offers_no_folders(alice_client, alice, imap_user, dovecot):
    seed(dovecot, imap_user, 3)
    page = alice_client.get(reverse("mail:account-add")).content.decode()
    assert 'value="pop3"' in page and "995/110" in page
    response = alice_client.post(reverse("mail:account-add"), pop3_form(imap_user, dovecot), follow=True)
    account = MailAccount.objects.get(owner=alice.user, name="Old provider")
    assert (account.protocol, account.imap_port, account.pop3_delete_after_days) == ("pop3", dovecot.pop3_port, None)
    assert response.redirect_chain[-1][0] == reverse("mail:accounts")
    text = response.content.decode()
    assert "Connected: 3 messages on the POP3 server." in text and "POP3:" in text
    assert 'aria-disabled="true">Folders' in text  # greyed out, with the reason
    folders = alice_client.get(reverse("mail:account-folders", args=[account.pk]), follow=True).content.decode()
    assert "POP3 accounts have only an inbox on the server" in folders

    test = alice_client.post(reverse("mail:account-test", args=[account.pk])).content.decode()
    assert "Connected: 3 messages" in test
    # Standard ports by protocol and security; a wrong password is said at once, the account kept.
    alice_client.post(
        reverse("mail:account-add"),
        pop3_form(imap_user, dovecot, name="Defaults", imap_port="", imap_security="ssl", imap_password_input="x"),
    )
    assert MailAccount.objects.get(name="Defaults").imap_port == 995
    form = pop3_form(imap_user, dovecot, name="Wrong", imap_password_input="nope")
    wrong = alice_client.post(reverse("mail:account-add"), form, follow=True)
    assert "Connection failed (auth): The server rejected the user name or password." in wrong.content.decode()
    imap_port = alice_client.post(
        reverse("mail:account-add"), pop3_form(imap_user, dovecot, name="Switched", imap_port=993, imap_security="ssl")
    )
    assert imap_port.status_code == 302 and MailAccount.objects.get(name="Switched").imap_port == 995


def test_another_users_pop3_account_is_not_found(alice, bob, imap_user, dovecot):
    account = create_pop3_account(alice.user, imap_user, dovecot)
    run_sync(account)
    message = account.messages.first() or None
    other = verified_client(bob)
    for name, method in (
        ("mail:account-edit", "get"),
        ("mail:account-test", "post"),
        ("mail:account-folders", "get"),
        ("mail:sync-now", "post"),
        ("mail:account-delete", "post"),
    ):
        assert getattr(other, method)(reverse(name, args=[account.pk])).status_code == 404, name
    run = account.sync_runs.first()
    assert other.get(reverse("mail:sync-run", args=[run.pk])).status_code == 404
    assert MailAccount.objects.filter(pk=account.pk).exists() and message is None


def test_imap_only_actions_are_refused_for_pop3_mail_with_the_reason(alice_client, alice, imap_user, dovecot):
    seed(dovecot, imap_user, 2)
    account = create_pop3_account(alice.user, imap_user, dovecot)
    run_sync(account)
    message = account.messages.order_by("sort_date").first()
    page = alice_client.get(reverse("mail:message", args=[message.pk])).content.decode()
    assert 'value="archive" disabled' in page and 'value="delete" class="danger" disabled' in page
    assert "POP3 accounts have only an inbox on the server" in page

    for action in ("archive", "delete", "move"):
        response = alice_client.post(
            reverse("mail:message-action", args=[message.pk]),
            {"action": action, "target_folder": message.folder_id},
            follow=True,
        )
        assert "POP3 accounts have only an inbox on the server" in response.content.decode(), action
    with pytest.raises(actions.ActionError, match="POP3"):
        actions.apply([message], "move", message.folder)
    # Read and flagged change here, and nothing is queued for a server that keeps no flags.
    alice_client.post(reverse("mail:message-action", args=[message.pk]), {"action": "flag"})
    alice_client.post(reverse("mail:message-action", args=[message.pk]), {"action": "mark_read"})
    message.refresh_from_db()
    assert message.flagged and message.seen and message.folder.name == "INBOX"
    assert not PendingAction.objects.filter(account=account).exists()
    assert actions.write_back(account.pk) == (0, 0)


def test_a_rule_tags_pop3_mail_and_logs_the_move_it_could_not_do(alice, alice_client, imap_user, dovecot):
    from rules.models import Rule, RuleLog
    from rules.service import run_on_messages
    from tags.models import Tag

    seed(dovecot, imap_user, 1)
    account = create_pop3_account(alice.user, imap_user, dovecot)
    run_sync(account)
    tag = Tag.objects.create(owner=alice.user, name="Old mail")
    rule = Rule.objects.create(
        owner=alice.user,
        name="Tag and archive",
        definition={
            "match": "all",
            "conditions": [{"field": "subject", "op": "contains", "value": "Message", "negate": False}],
            "actions": [
                {"type": "add_tag", "value": tag.pk},
                {"type": "archive", "value": None},
                {"type": "mark_read", "value": None},
            ],
        },
    )
    message = account.messages.get()
    assert run_on_messages(alice.user.pk, [message]) == 1
    log = RuleLog.objects.get(rule=rule, message=message)
    assert not log.success and render(log.error).startswith("Not moved: POP3 accounts")
    message.refresh_from_db()
    assert message.seen and message.tag_assignments.filter(tag=tag).exists()
    assert not PendingAction.objects.filter(account=account).exists()
    # The rule editor says so, and offers no POP3 inbox as a destination.
    editor = alice_client.get(reverse("rules:new")).content.decode()
    assert 'id="pop3-actions-note"' in editor and f"{account.name}: POP3 accounts have only an inbox" in editor
    assert f"{account.name} / Inbox</option>" not in editor


def test_a_reply_from_a_pop3_account_is_sent_without_a_sent_copy_to_append(alice, imap_user, dovecot, smtp_sink):
    from mail import replies, sending
    from mail.models import Draft

    seed(dovecot, imap_user, 1)
    account = create_pop3_account(alice.user, imap_user, dovecot, smtp_host=smtp_sink.host, smtp_port=smtp_sink.port)
    account.smtp_security = "plain"
    account.save()
    run_sync(account)
    original = account.messages.get()
    draft = replies.create_draft(original, "reply")
    replies.update_draft(draft, to="anna@example.test", cc="", subject=draft.subject, body="Thanks!")
    assert sending.queue_send(draft)
    assert sending.send_draft(draft.pk) == "sent"
    assert len(smtp_sink.wait_for_messages(1)) == 1
    original.refresh_from_db()
    assert original.answered  # here only
    assert not PendingAction.objects.filter(account=account).exists()  # no APPEND to a Sent folder POP3 lacks
    assert Draft.objects.get(pk=draft.pk).sent_raw is None


def test_the_idle_watcher_leaves_pop3_accounts_to_beat(alice, imap_user, dovecot):
    from mail import idle
    from tests.plugins.mail import create_account

    imap_account = create_account(alice.user, imap_user, dovecot, name="IMAP")
    pop = create_pop3_account(alice.user, imap_user, dovecot, name="POP")
    watched = idle.accounts_to_watch(idle.Shard(), limit=100)
    assert imap_account.pk in watched and pop.pk not in watched


@pytest.mark.django_db(transaction=True)
def test_the_accounts_beat_row_runs_the_pop3_sync_in_a_worker(celery_worker, alice, imap_user, dovecot):
    import json

    from celery import current_app
    from django_celery_beat.models import PeriodicTask

    seed(dovecot, imap_user, 3)
    account = create_pop3_account(alice.user, imap_user, dovecot)
    row = PeriodicTask.objects.get(pk=account.periodic_task_id)
    assert row.enabled and row.task == "mail.sync_account"
    result = current_app.send_task(row.task, kwargs=json.loads(row.kwargs))  # what beat sends
    assert result.get(timeout=60) == {"run": account.sync_runs.get().pk, "status": "success", "new": 3}
    assert Pop3Seen.objects.filter(account=account).count() == 3
