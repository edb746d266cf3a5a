"""What the first sync takes (issue 18): the window, newest first, batch by batch, resumable.

The tests taking `mail_server` run against Dovecot and Cyrus (tests/plugins/imap_servers.py).
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from mail import signals
from mail.models import MailAccount, Message, SyncRun
from mail.sync import announce_new_mail, sync_account
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import create_account, make_raw, run_sync, select_folders

pytestmark = pytest.mark.django_db

OLD = datetime.now(UTC) - timedelta(days=800)  # outside the default window of the last 12 months


def deliver(server, user, numbers, *, when=None, flags="", folder="INBOX"):
    for n in numbers:
        server.deliver(user, make_raw(n), folder=folder, flags=flags, internaldate=when)


def stored_subjects(account) -> list[str]:
    return sorted(m.subject for m in Message.objects.filter(account=account))


def test_a_new_account_takes_the_last_twelve_months_and_plans_the_older_mail(mail_server, mail_user, alice):
    deliver(mail_server, mail_user, range(10), when=OLD)  # UIDs 1-10, two years old
    deliver(mail_server, mail_user, range(10, 15))  # UIDs 11-15, today
    account = create_account(alice.user, mail_user, mail_server)
    assert account.first_sync == MailAccount.FirstSync.SINCE
    assert account.first_sync_since == timezone.localdate() - timedelta(days=365)

    run = run_sync(account)
    assert run.status == SyncRun.Status.SUCCESS, run.error
    assert run.messages_new == 5
    assert stored_subjects(account) == [f"Message number {n}" for n in range(10, 15)]
    inbox = account.folders.get(name="INBOX")
    assert inbox.uidnext == 16
    assert (inbox.backfill_below_uid, inbox.backfill_before, inbox.backfill_total) == (16, account.first_sync_since, 10)
    assert inbox.backfill_uidvalidity == inbox.uidvalidity

    # New mail is always fetched, also mail the server dates back (the window limits the first sync only).
    deliver(mail_server, mail_user, [20])
    deliver(mail_server, mail_user, [21], when=OLD)
    again = run_sync(account)
    assert again.messages_new == 2
    inbox.refresh_from_db()
    assert inbox.backfill_below_uid == 16 and inbox.backfill_total == 10  # the plan is the first sync's


def test_the_first_sync_fetches_newest_first_and_commits_batch_by_batch(mail_server, mail_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 4
    deliver(mail_server, mail_user, range(12))
    account = create_account(alice.user, mail_user, mail_server)
    seen_after_each_batch = []

    def progress(run):
        seen_after_each_batch.append(sorted(Message.objects.filter(account=account).values_list("uid", flat=True)))

    run = sync_account(account.pk, progress=progress).run
    assert run.status == SyncRun.Status.SUCCESS and run.messages_new == 12
    batches = [uids for uids in seen_after_each_batch if uids]
    assert batches[0] == [9, 10, 11, 12]  # committed (another connection could read it) before the rest
    assert batches[1] == list(range(5, 13))
    assert batches[-1] == list(range(1, 13))


def killed_after_storing(account, count: int) -> None:
    """A first sync that dies, as a killed worker would, once it has stored `count` messages."""

    def crash(run):
        if run.messages_new >= count:
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        sync_account(account.pk, progress=crash)


def test_a_first_sync_killed_midway_resumes_without_duplicates_or_gaps(mail_server, mail_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 3
    deliver(mail_server, mail_user, range(4), when=OLD)
    deliver(mail_server, mail_user, range(4, 14))
    account = create_account(alice.user, mail_user, mail_server)

    killed_after_storing(account, 6)
    inbox = account.folders.get(name="INBOX")
    assert inbox.uidnext is None  # the first sync is not recorded as done
    assert sorted(inbox.messages.values_list("uid", flat=True)) == list(range(9, 15))  # the newest six

    run = run_sync(account)
    assert run.status == SyncRun.Status.SUCCESS and run.messages_new == 4
    assert sorted(inbox.messages.values_list("uid", flat=True)) == list(range(5, 15))
    assert stored_subjects(account) == sorted(f"Message number {n}" for n in range(4, 14))
    inbox.refresh_from_db()
    assert inbox.uidnext == 15 and inbox.backfill_total == 4
    assert run_sync(account).messages_new == 0


def test_a_flag_changed_during_the_first_sync_arrives_with_the_next(mail_server, mail_user, alice, settings):
    """The first sync asks for flags changed since its own SELECT instead of sweeping what it just
    fetched (with CONDSTORE): a change made after a message was fetched still arrives."""
    settings.MAILHELPER_SYNC_BATCH = 3
    deliver(mail_server, mail_user, range(9))
    account = create_account(alice.user, mail_user, mail_server)
    changed = []

    def change_a_fetched_message(run):
        if run.messages_new and not changed:
            srv.store(mail_server, mail_user, [9], "+FLAGS", r"(\Flagged)")
            changed.append(9)

    run = sync_account(account.pk, progress=change_a_fetched_message).run
    assert run.status == SyncRun.Status.SUCCESS and run.messages_new == 9 and changed
    inbox = account.folders.get(name="INBOX")
    assert inbox.messages.filter(flagged=True).count() <= 1  # seen now, or by the next sync
    run_sync(account)
    assert list(inbox.messages.filter(flagged=True).values_list("uid", flat=True)) == [9]


def test_a_resumed_first_sync_sweeps_the_flags_of_what_it_stored_before(mail_server, mail_user, alice, settings):
    settings.MAILHELPER_SYNC_BATCH = 3
    deliver(mail_server, mail_user, range(9))
    account = create_account(alice.user, mail_user, mail_server)

    killed_after_storing(account, 3)
    inbox = account.folders.get(name="INBOX")
    assert sorted(inbox.messages.values_list("uid", flat=True)) == [7, 8, 9]
    srv.store(mail_server, mail_user, [8], "+FLAGS", r"(\Seen)")  # while no sync ran
    run = run_sync(account)
    assert run.status == SyncRun.Status.SUCCESS and run.messages_new == 6
    assert list(inbox.messages.filter(seen=True).values_list("uid", flat=True)) == [8]


def test_only_the_newest_n_per_folder(mail_server, mail_user, alice):
    deliver(mail_server, mail_user, range(20))
    deliver(mail_server, mail_user, range(100, 103), folder="Archive")
    account = create_account(alice.user, mail_user, mail_server, first_sync="newest", first_sync_newest=5)
    select_folders(account, "INBOX", mail_server.folder("Archive"))
    run = run_sync(account)
    assert run.status == SyncRun.Status.SUCCESS and run.messages_new == 8
    inbox, archive = account.folders.get(name="INBOX"), account.folders.get(name=mail_server.folder("Archive"))
    assert sorted(inbox.messages.values_list("uid", flat=True)) == [16, 17, 18, 19, 20]
    assert (inbox.backfill_below_uid, inbox.backfill_before, inbox.backfill_total) == (16, None, 15)
    assert archive.messages.count() == 3 and archive.backfill_below_uid is None  # it had fewer than five


def test_only_unread_mail_and_no_older_mail_later(mail_server, mail_user, alice):
    deliver(mail_server, mail_user, range(6), flags="S")
    deliver(mail_server, mail_user, range(6, 10))
    account = create_account(alice.user, mail_user, mail_server, first_sync="unread")
    run = run_sync(account)
    assert run.messages_new == 4
    assert stored_subjects(account) == [f"Message number {n}" for n in range(6, 10)]
    assert not Message.objects.filter(account=account, seen=True).exists()
    inbox = account.folders.get(name="INBOX")
    assert inbox.backfill_below_uid is None and inbox.backfill_total == 0
    deliver(mail_server, mail_user, [50], flags="S")  # new mail read elsewhere first still arrives
    assert run_sync(account).messages_new == 1


def test_the_whole_mailbox_and_backfill_switched_off(mail_server, mail_user, alice):
    deliver(mail_server, mail_user, range(5), when=OLD)
    deliver(mail_server, mail_user, range(5, 8))
    everything = create_account(alice.user, mail_user, mail_server, name="all", first_sync="all")
    assert run_sync(everything).messages_new == 8
    assert everything.folders.get(name="INBOX").backfill_below_uid is None

    no_backfill = create_account(alice.user, mail_user, mail_server, name="recent", backfill_older=False)
    assert run_sync(no_backfill).messages_new == 3
    assert no_backfill.folders.get(name="INBOX").backfill_below_uid is None


def test_uidvalidity_reset_under_a_window_reattaches_everything_held(mail_server, mail_user, alice):
    """On Dovecot (UIDs + 1000 after the reset) and Cyrus (the mailbox restored, UIDs from 1 again)."""
    deliver(mail_server, mail_user, range(6), when=OLD)
    deliver(mail_server, mail_user, range(6, 10))
    account = create_account(alice.user, mail_user, mail_server)
    run_sync(account)
    inbox = account.folders.get(name="INBOX")
    held = set(inbox.messages.values_list("pk", flat=True))
    old_validity = inbox.uidvalidity
    assert len(held) == 4
    mail_server.reset_uidvalidity(mail_user)

    run = run_sync(account)
    assert run.status == SyncRun.Status.SUCCESS, run.error
    assert (run.messages_new, run.messages_expunged) == (0, 0)
    inbox.refresh_from_db()
    assert inbox.uidvalidity != old_validity
    live = inbox.messages.filter(expunged_at__isnull=True)
    assert set(live.values_list("pk", flat=True)) == held
    assert set(live.values_list("uidvalidity", flat=True)) == {inbox.uidvalidity}
    assert inbox.backfill_uidvalidity == inbox.uidvalidity and inbox.backfill_total == 6
    assert inbox.backfill_below_uid == inbox.uidnext


def test_the_sync_task_announces_new_mail_after_the_first_batch_and_every_thousand(alice):
    heard = []

    def listener(sender, account_id, **kwargs):
        heard.append(account_id)

    signals.new_mail_synced.connect(listener)
    cache.add("mailhelper:analysis-queued:acc", 1, timeout=60)  # analysis' own receiver queues nothing here
    try:
        progress = announce_new_mail("acc", every=1000)
        for new in (0, 200, 400, 1100, 1200, 1300, 2300):
            progress(SyncRun(messages_new=new))
    finally:
        signals.new_mail_synced.disconnect(listener)
    assert heard == ["acc", "acc", "acc"]  # at 200 (the first batch), 1200 and 2300


def test_the_account_form_offers_the_window_and_the_switches(alice_client, alice, bob, dovecot, imap_user):
    from django.urls import reverse

    page = alice_client.get(reverse("mail:account-add")).content.decode()
    for text in ("Mail since a date", "Only the newest messages of each folder", "Only unread mail",
                 "The whole mailbox", "Fetch older mail in the background", "Analyse new mail",
                 "Urgency booster", "Use my language model", "mail arriving later is always fetched"):  # fmt: skip
        assert text in page, text
    assert 'type="date"' in page and (timezone.localdate() - timedelta(days=365)).isoformat() in page
    data = {
        "name": "Work",
        "email_address": "me@example.test",
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "plain",
        "imap_username": imap_user.username,
        "imap_password_input": imap_user.password,
        "smtp_port": 587,
        "smtp_security": "starttls",
        "sync_interval_minutes": 5,
        "enabled": "on",
        "first_sync": "newest",
        "first_sync_newest": "0",
        "urgency_booster": "on",
    }
    assert "Choose between 1 and 100,000" in alice_client.post(reverse("mail:account-add"), data).content.decode()
    data["first_sync_newest"] = "250"
    assert alice_client.post(reverse("mail:account-add"), data).status_code == 302
    account = MailAccount.objects.get(owner=alice.user, name="Work")
    assert (account.first_sync, account.first_sync_newest) == ("newest", 250)
    assert (account.backfill_older, account.analyse_on_fetch, account.urgency_booster) == (False, False, True)

    edit = reverse("mail:account-edit", args=[account.pk])
    assert "First sync" in alice_client.get(edit).content.decode()
    data.update(first_sync="since", first_sync_since="", backfill_older="on", name="Work")
    assert alice_client.post(edit, data).status_code == 302
    account.refresh_from_db()
    assert account.first_sync_since == timezone.localdate() - timedelta(days=365) and account.backfill_older

    bobs = create_account(bob.user, imap_user, dovecot, name="bob's")
    assert alice_client.post(reverse("mail:account-edit", args=[bobs.pk]), data).status_code == 404
