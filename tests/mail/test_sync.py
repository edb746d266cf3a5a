"""The sync engine against real servers: incremental, idempotent, and faithful to the server.

The tests taking `mail_server` run against Dovecot and Cyrus (tests/plugins/imap_servers.py), those marked
ALL_SERVERS also against Cyrus without CONDSTORE (the FLAGS sweep); the rest need Dovecot's Maildir.
"""

import pytest

from mail.models import Folder, Message, SyncRun
from tests.plugins import imap_helpers as srv
from tests.plugins.imap_servers import ALL_SERVERS
from tests.plugins.mail import create_account, make_raw, run_sync, select_folders

pytestmark = pytest.mark.django_db


def seed(server, user, count, folder="INBOX", start=0, **kwargs):
    for i in range(start, start + count):
        server.deliver(user, make_raw(i, **kwargs), folder=folder)


def test_initial_sync_across_folders_then_a_second_sync_fetches_nothing(mail_server, mail_user, server_account):
    archive = mail_server.folder("Archive")
    seed(mail_server, mail_user, 250)
    seed(mail_server, mail_user, 60, folder="Archive", start=1000, attachment=b"\x00" * 2048)
    select_folders(server_account, "INBOX", archive)

    first = run_sync(server_account)
    assert first.status == SyncRun.Status.SUCCESS, first.error
    assert first.messages_new == 310 and first.folders_total == 2 and first.folders_done == 2
    assert first.bytes_fetched > 250 * 1024
    inbox = server_account.folders.get(name="INBOX")
    assert inbox.messages.count() == 250 and inbox.uidvalidity and inbox.uidnext == 251
    assert Message.objects.filter(folder__name=archive, has_attachments=True).count() == 60
    assert sorted(inbox.messages.values_list("uid", flat=True)) == list(range(1, 251))
    message = inbox.messages.get(uid=7)  # the seventh delivered, numbered from 0
    assert message.subject == "Message number 6" and "body of message 6" in message.text_body
    assert message.from_address == "sender@example.test" and message.to_addresses == ["me@example.test"]
    assert b"Subject: Message number 6" in message.raw

    second = run_sync(server_account)
    assert second.status == SyncRun.Status.SUCCESS
    assert (second.messages_new, second.messages_updated, second.messages_expunged, second.bytes_fetched) == (
        0,
        0,
        0,
        0,
    )
    assert Message.objects.filter(account=server_account).count() == 310
    server_account.refresh_from_db()
    assert server_account.status == "ok" and server_account.last_sync_at is not None


def test_syncing_does_not_mark_mail_as_read(mail_server, mail_user, server_account):
    seed(mail_server, mail_user, 5)
    run_sync(server_account)
    assert all("\\Seen" not in flags for flags in srv.server_flags(mail_server, mail_user).values())
    assert not Message.objects.filter(account=server_account, seen=True).exists()


@pytest.mark.parametrize("mail_server", ALL_SERVERS, indirect=True)
def test_flags_changed_on_the_server_arrive(mail_server, mail_user, server_account):
    seed(mail_server, mail_user, 10)
    run_sync(server_account)
    inbox = server_account.folders.get(name="INBOX")
    # Which path ran: CHANGEDSINCE from the stored HIGHESTMODSEQ, or (cyrus-sweep) a FLAGS sweep.
    assert (inbox.highestmodseq is not None) == mail_server.condstore
    srv.store(mail_server, mail_user, [2, 3], "+FLAGS", r"(\Seen \Flagged)")
    srv.store(mail_server, mail_user, [4], "+FLAGS", "(customtag)")
    run = run_sync(server_account)
    assert run.messages_updated == 3
    assert set(inbox.messages.filter(seen=True, flagged=True).values_list("uid", flat=True)) == {2, 3}
    assert inbox.messages.get(uid=4).keywords == ["customtag"]
    srv.store(mail_server, mail_user, [2], "-FLAGS", r"(\Seen)")
    assert run_sync(server_account).messages_updated == 1
    assert not inbox.messages.get(uid=2).seen
    assert run_sync(server_account).messages_updated == 0  # a sweep finds nothing changed, too


@pytest.mark.parametrize("mail_server", ALL_SERVERS, indirect=True)
def test_messages_expunged_on_the_server_are_marked(mail_server, mail_user, server_account):
    seed(mail_server, mail_user, 8)
    run_sync(server_account)
    srv.expunge(mail_server, mail_user, [3, 5])
    seed(mail_server, mail_user, 1, start=100)  # and one arrives meanwhile
    run = run_sync(server_account)
    assert (run.messages_expunged, run.messages_new) == (2, 1)
    inbox = server_account.folders.get(name="INBOX")
    assert set(inbox.messages.filter(expunged_at__isnull=False).values_list("uid", flat=True)) == {3, 5}
    assert inbox.messages.filter(expunged_at__isnull=True).count() == 7


@pytest.mark.parametrize("mail_server", ALL_SERVERS, indirect=True)
def test_uidvalidity_reset_resyncs_without_duplicates(mail_server, mail_user, server_account):
    seed(mail_server, mail_user, 12)
    run_sync(server_account)
    inbox = server_account.folders.get(name="INBOX")
    old_validity = inbox.uidvalidity
    before = set(inbox.messages.values_list("pk", flat=True))
    mail_server.reset_uidvalidity(mail_user)
    srv.expunge(mail_server, mail_user, [min(srv.server_flags(mail_server, mail_user))])  # one vanished in the reset
    seed(mail_server, mail_user, 2, start=500)

    run = run_sync(server_account)
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
    assert Message.objects.filter(account=server_account).count() == 14  # 12 kept/marked + 2 new, no copies


def test_a_message_moved_by_another_client_leaves_one_folder_and_arrives_in_the_other(
    mail_server, mail_user, server_account
):
    archive = mail_server.folder("Archive")
    seed(mail_server, mail_user, 4)
    select_folders(server_account, "INBOX", archive)
    run_sync(server_account)
    srv.move(mail_server, mail_user, [2], archive)  # UID MOVE, as a phone's mail app would

    run = run_sync(server_account)
    assert run.status == SyncRun.Status.SUCCESS, run.error
    assert (run.messages_new, run.messages_expunged) == (1, 1)
    inbox, moved = server_account.folders.get(name="INBOX"), server_account.folders.get(name=archive)
    assert inbox.messages.get(uid=2).expunged_at is not None
    assert [m.subject for m in moved.messages.all()] == ["Message number 1"]
    assert inbox.messages.filter(expunged_at__isnull=True).count() == 3
    assert run_sync(server_account).messages_new == 0


def test_a_folder_renamed_on_the_server_is_listed_under_its_new_name(mail_server, mail_user, server_account):
    projects, renamed = mail_server.folder("Projects"), mail_server.folder("Projects 2026")
    seed(mail_server, mail_user, 3, folder="Projects")
    seed(mail_server, mail_user, 1, start=10)
    select_folders(server_account, "INBOX", projects)
    assert run_sync(server_account).messages_new == 4
    old = server_account.folders.get(name=projects)
    old_validity = old.uidvalidity
    srv.rename_folder(mail_server, mail_user, f'"{projects}"', f'"{renamed}"')

    run = run_sync(server_account)
    assert run.status == SyncRun.Status.SUCCESS and not run.errors, run.errors
    old.refresh_from_db()
    new = server_account.folders.get(name=renamed)
    # The old name is gone from the server (kept here with its mail); the new one is listed, not yet synced.
    assert not old.exists_on_server and old.messages.count() == 3
    assert new.exists_on_server and not new.sync_enabled and new.delimiter == old.delimiter
    assert new.display_name == "Projects 2026"
    new.sync_enabled = True
    new.save(update_fields=["sync_enabled"])
    assert run_sync(server_account).messages_new == 3
    new.refresh_from_db()
    assert new.uidvalidity == old_validity  # both servers keep a renamed folder's UIDVALIDITY


def test_a_folder_deleted_on_the_server_stops_being_synced(mail_server, mail_user, server_account):
    projects = mail_server.folder("Projects")
    seed(mail_server, mail_user, 2, folder="Projects")
    select_folders(server_account, "INBOX", projects)
    run_sync(server_account)
    srv.delete_folder(mail_server, mail_user, projects)
    seed(mail_server, mail_user, 1)

    run = run_sync(server_account)
    assert run.status == SyncRun.Status.SUCCESS and not run.errors, run.errors
    assert run.folders_total == 1 and run.messages_new == 1
    gone = server_account.folders.get(name=projects)
    assert not gone.exists_on_server and gone.messages.count() == 2


def test_a_folder_with_a_non_ascii_name_is_synced_under_its_decoded_name(mail_server, mail_user, server_account):
    """IMAP names folders in modified UTF-7 (RFC 3501 5.1.3): "Größe" is "Gr&APYA3w-e" on the wire and on disk."""
    seed(mail_server, mail_user, 2, folder="Rechnungen.Gr&APYA3w-e")
    name = mail_server.folder("Rechnungen.Größe")  # "Rechnungen.Größe" on Dovecot, "INBOX/Rechnungen/Größe" on Cyrus
    select_folders(server_account, "INBOX", name)
    run = run_sync(server_account)
    assert run.status == SyncRun.Status.SUCCESS and not run.errors, run.errors
    folder = server_account.folders.get(name=name)
    assert folder.display_name == "Größe" and folder.messages.count() == 2
    assert run_sync(server_account).messages_new == 0


@pytest.mark.parametrize("mail_server", ALL_SERVERS, indirect=True)
def test_mailbox_changed_during_a_sync_loses_nothing(mail_server, mail_user, server_account, settings):
    settings.MAILHELPER_SYNC_BATCH = 10
    seed(mail_server, mail_user, 35)
    delivered = []

    def deliver_midway(run):
        if not delivered and run.messages_new >= 10:
            delivered.append(True)
            seed(mail_server, mail_user, 3, start=900)
            srv.store(mail_server, mail_user, [1], "+FLAGS", r"(\Flagged)")

    from mail.sync import sync_account

    run = sync_account(server_account.pk, progress=deliver_midway).run
    assert run.status == SyncRun.Status.SUCCESS and delivered
    run_sync(server_account)
    inbox = server_account.folders.get(name="INBOX")
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


def test_wrong_password_marks_the_account_as_needing_attention(mail_server, mail_user, alice):
    account = create_account(alice.user, mail_user, mail_server, imap_password="wrong")
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


def test_folders_are_discovered_with_special_use(mail_server, server_account):
    select_folders(server_account, "INBOX")
    uses = dict(server_account.folders.values_list("name", "special_use"))
    assert uses["INBOX"] == "inbox" and uses[mail_server.folder("Sent")] == "sent"
    assert uses[mail_server.folder("Trash")] == "trash" and uses[mail_server.folder("Archive")] == "archive"
    assert list(server_account.folders.filter(sync_enabled=True).values_list("name", flat=True)) == ["INBOX"]
    assert Folder.objects.filter(account=server_account).count() >= 5
    archive = server_account.folders.get(special_use="archive")
    # Cyrus: "/" separates and the folder is INBOX's child ("INBOX/Archive"), shown by its last part.
    assert archive.display_name == "Archive" and archive.delimiter == mail_server.separator


def test_a_run_left_running_by_a_dead_worker_does_not_block_sync_now(mail_account):
    from mail.sync import queue_run

    stale = SyncRun.objects.create(account=mail_account, status=SyncRun.Status.RUNNING)
    run, created = queue_run(mail_account, SyncRun.Trigger.MANUAL)  # nobody holds the account's lock
    stale.refresh_from_db()
    assert created and run.pk != stale.pk
    assert stale.status == SyncRun.Status.INTERRUPTED and stale.finished_at is not None
    again, created_again = queue_run(mail_account, SyncRun.Trigger.MANUAL)
    assert again.pk == run.pk and not created_again  # a fresh queued run is shown, not duplicated
