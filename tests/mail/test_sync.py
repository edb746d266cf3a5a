"""The sync engine against a real Dovecot: incremental, idempotent, and faithful to the server."""

import pytest

from mail.models import Folder, Message, SyncRun
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import create_account, make_raw, run_sync, select_folders

pytestmark = pytest.mark.django_db


def seed(dovecot, user, count, folder="INBOX", start=0, **kwargs):
    for i in range(start, start + count):
        dovecot.deliver(user, make_raw(i, **kwargs), folder=folder)


def test_initial_sync_across_folders_then_a_second_sync_fetches_nothing(dovecot, imap_user, mail_account):
    seed(dovecot, imap_user, 250)
    seed(dovecot, imap_user, 60, folder="Archive", start=1000, attachment=b"\x00" * 2048)
    select_folders(mail_account, "INBOX", "Archive")

    first = run_sync(mail_account)
    assert first.status == SyncRun.Status.SUCCESS, first.error
    assert first.messages_new == 310 and first.folders_total == 2 and first.folders_done == 2
    assert first.bytes_fetched > 250 * 1024
    inbox = mail_account.folders.get(name="INBOX")
    assert inbox.messages.count() == 250 and inbox.uidvalidity and inbox.uidnext == 251
    assert Message.objects.filter(folder__name="Archive", has_attachments=True).count() == 60
    assert sorted(inbox.messages.values_list("uid", flat=True)) == list(range(1, 251))
    message = inbox.messages.get(uid=7)  # the seventh delivered, numbered from 0
    assert message.subject == "Message number 6" and "body of message 6" in message.text_body
    assert message.from_address == "sender@example.test" and message.to_addresses == ["me@example.test"]
    assert b"Subject: Message number 6" in message.raw

    second = run_sync(mail_account)
    assert second.status == SyncRun.Status.SUCCESS
    assert (second.messages_new, second.messages_updated, second.messages_expunged, second.bytes_fetched) == (
        0,
        0,
        0,
        0,
    )
    assert Message.objects.filter(account=mail_account).count() == 310
    mail_account.refresh_from_db()
    assert mail_account.status == "ok" and mail_account.last_sync_at is not None


def test_syncing_does_not_mark_mail_as_read(dovecot, imap_user, mail_account):
    seed(dovecot, imap_user, 5)
    run_sync(mail_account)
    assert all("\\Seen" not in flags for flags in srv.server_flags(dovecot, imap_user).values())
    assert not Message.objects.filter(account=mail_account, seen=True).exists()


def test_flags_changed_on_the_server_arrive(dovecot, imap_user, mail_account):
    seed(dovecot, imap_user, 10)
    run_sync(mail_account)
    srv.store(dovecot, imap_user, [2, 3], "+FLAGS", r"(\Seen \Flagged)")
    srv.store(dovecot, imap_user, [4], "+FLAGS", "(customtag)")
    run = run_sync(mail_account)
    assert run.messages_updated == 3
    inbox = mail_account.folders.get(name="INBOX")
    assert set(inbox.messages.filter(seen=True, flagged=True).values_list("uid", flat=True)) == {2, 3}
    assert inbox.messages.get(uid=4).keywords == ["customtag"]
    srv.store(dovecot, imap_user, [2], "-FLAGS", r"(\Seen)")
    run_sync(mail_account)
    assert not inbox.messages.get(uid=2).seen


def test_messages_expunged_on_the_server_are_marked(dovecot, imap_user, mail_account):
    seed(dovecot, imap_user, 8)
    run_sync(mail_account)
    srv.expunge(dovecot, imap_user, [3, 5])
    seed(dovecot, imap_user, 1, start=100)  # and one arrives meanwhile
    run = run_sync(mail_account)
    assert (run.messages_expunged, run.messages_new) == (2, 1)
    inbox = mail_account.folders.get(name="INBOX")
    assert set(inbox.messages.filter(expunged_at__isnull=False).values_list("uid", flat=True)) == {3, 5}
    assert inbox.messages.filter(expunged_at__isnull=True).count() == 7


def test_uidvalidity_reset_resyncs_without_duplicates(dovecot, imap_user, mail_account):
    seed(dovecot, imap_user, 12)
    run_sync(mail_account)
    inbox = mail_account.folders.get(name="INBOX")
    old_validity = inbox.uidvalidity
    before = set(inbox.messages.values_list("pk", flat=True))
    srv_reset_uidvalidity(dovecot, imap_user)
    srv.expunge(dovecot, imap_user, [srv_first_uid(dovecot, imap_user)])  # one vanished in the reset
    seed(dovecot, imap_user, 2, start=500)

    run = run_sync(mail_account)
    assert run.status == SyncRun.Status.SUCCESS, run.error
    inbox.refresh_from_db()
    assert inbox.uidvalidity != old_validity
    live = inbox.messages.filter(expunged_at__isnull=True)
    assert live.count() == 13 and run.messages_new == 2
    assert set(live.values_list("pk", flat=True)) & before == before - set(
        inbox.messages.filter(expunged_at__isnull=False).values_list("pk", flat=True)
    )
    assert inbox.messages.filter(expunged_at__isnull=False).count() == 1
    # The one retired by the renumbering counts as removed on the server; the re-attached are neither new nor updated.
    assert (run.messages_new, run.messages_updated, run.messages_expunged) == (2, 0, 1)
    assert not live.filter(uidvalidity=old_validity).exists()
    assert Message.objects.filter(account=mail_account).count() == 14  # 12 kept/marked + 2 new, no copies


def srv_first_uid(dovecot, user):
    return min(srv.server_flags(dovecot, user))


def srv_reset_uidvalidity(dovecot, user):
    """Make Dovecot renumber INBOX: a new UIDVALIDITY and new UIDs, as after a server restore."""
    import os
    import re

    maildir = user.maildir
    uidlist = maildir / "dovecot-uidlist"
    lines = uidlist.read_text().splitlines()
    header = lines[0]
    validity = int(re.search(r" V(\d+)", header).group(1))
    next_uid = int(re.search(r" N(\d+)", header).group(1))
    header = re.sub(r" V\d+", f" V{validity + 77}", header)
    header = re.sub(r" N\d+", f" N{next_uid + 1000}", header)
    body = []
    for line in lines[1:]:
        uid, rest = line.split(" ", 1)
        body.append(f"{int(uid) + 1000} {rest}")
    uidlist.write_text("\n".join([header, *body]) + "\n")
    for name in os.listdir(maildir):
        if name.startswith("dovecot.index"):
            (maildir / name).unlink()


def test_mailbox_changed_during_a_sync_loses_nothing(dovecot, imap_user, mail_account, settings):
    settings.MAILHELPER_SYNC_BATCH = 10
    seed(dovecot, imap_user, 35)
    delivered = []

    def deliver_midway(run):
        if not delivered and run.messages_new >= 10:
            delivered.append(True)
            seed(dovecot, imap_user, 3, start=900)
            srv.store(dovecot, imap_user, [1], "+FLAGS", r"(\Flagged)")

    from mail.sync import sync_account

    run = sync_account(mail_account.pk, progress=deliver_midway).run
    assert run.status == SyncRun.Status.SUCCESS and delivered
    run_sync(mail_account)
    inbox = mail_account.folders.get(name="INBOX")
    assert inbox.messages.count() == 38
    assert sorted(inbox.messages.values_list("uid", flat=True)) == list(range(1, 39))
    assert inbox.messages.get(uid=1).flagged


def test_malformed_messages_are_stored_with_warnings_and_do_not_stop_the_sync(dovecot, imap_user, mail_account):
    bad = [
        b"",
        b"\x00\xff\xfe garbage without headers",
        b"Subject: =?x-unknown?B?SGVsbG8=?=\r\nContent-Type: text/plain; charset=x-nonsense\r\n\r\n"
        b"body \xe4\xf6\xfc\r\n",
        b"From: a@b\r\nContent-Type: multipart/mixed; boundary=XYZ\r\n\r\n"
        b"--XYZ\r\nContent-Type: text/plain\r\n\r\ntruncated",
        "Subject: Ümlaut raw 8-bit\r\nFrom: Jörg <j@example.test>\r\n\r\nbody".encode("latin-1"),
    ]
    for raw in bad:
        dovecot.deliver(imap_user, raw or b"\r\n")
    seed(dovecot, imap_user, 2, start=50)
    run = run_sync(mail_account)
    assert run.status == SyncRun.Status.SUCCESS and run.messages_new == 7
    inbox = mail_account.folders.get(name="INBOX")
    assert all(m.raw is not None for m in inbox.messages.all())
    assert inbox.messages.exclude(parse_warnings=[]).count() >= 3
    assert inbox.messages.get(uid=3).text_body.startswith("body")


def test_wrong_password_marks_the_account_as_needing_attention(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot, imap_password="wrong")
    run = run_sync(account)
    account.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert account.status == "needs_attention" and "user name or password" in account.status_message
    assert "wrong" not in account.status_message and "wrong" not in run.error


def test_unreachable_server_is_retryable(alice, imap_user, dovecot):
    from mail.sync import sync_account

    account = create_account(alice.user, imap_user, dovecot, imap_port=1)
    outcome = sync_account(account.pk)
    assert outcome.retryable and outcome.run.status == SyncRun.Status.FAILED
    assert "refused" in outcome.run.error


def test_one_sync_per_account_at_a_time(mail_account):
    from django.db import connections

    from mail.sync import _lock_key, sync_account

    other = connections.create_connection("default")  # another session, like a second worker
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_key(mail_account)])
        run = sync_account(mail_account.pk).run
        assert run.status == SyncRun.Status.SKIPPED and "already running" in run.error
    finally:
        other.close()
    assert sync_account(mail_account.pk).run.status == SyncRun.Status.SUCCESS


def test_strict_mode_user_logged_out_is_skipped_as_locked(dovecot, imap_user, db):
    from accounts import keyring
    from tests.plugins.accounts import create_test_user

    carol = create_test_user("carol", strict=True)
    account = create_account(carol.user, imap_user, dovecot)
    keyring.drop_session_key(carol.user)
    run = run_sync(account)
    account.refresh_from_db()
    assert run.status == SyncRun.Status.SKIPPED and run.error == "locked: log in to resume"
    assert account.status == "locked"


def test_folders_are_discovered_with_special_use(mail_account):
    select_folders(mail_account, "INBOX")
    uses = dict(mail_account.folders.values_list("name", "special_use"))
    assert uses["INBOX"] == "inbox" and uses["Sent"] == "sent" and uses["Trash"] == "trash"
    assert uses["Archive"] == "archive"
    assert list(mail_account.folders.filter(sync_enabled=True).values_list("name", flat=True)) == ["INBOX"]
    assert Folder.objects.filter(account=mail_account).count() >= 5


def test_a_run_left_running_by_a_dead_worker_does_not_block_sync_now(mail_account):
    from mail.sync import queue_run

    stale = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.RUNNING)
    run, created = queue_run(mail_account, SyncRun.Trigger.MANUAL)  # nobody holds the account's lock
    stale.refresh_from_db()
    assert created and run.pk != stale.pk
    assert stale.status == SyncRun.Status.INTERRUPTED and stale.finished_at is not None
    again, created_again = queue_run(mail_account, SyncRun.Trigger.MANUAL)
    assert again.pk == run.pk and not created_again  # a fresh queued run is shown, not duplicated
