"""Mail pages: accounts, folders, sync progress, list, detail and actions, scoped to their owner."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from analysis import pipeline
from mail.models import Folder, MailAccount, Message, PendingAction
from tags.models import Tag, TagAssignment
from tests.plugins import imap_helpers as srv
from tests.plugins.accounts import verified_client
from tests.plugins.imap_servers import ALL_SERVERS
from tests.plugins.mail import create_account, make_raw, run_sync, select_folders

pytestmark = pytest.mark.django_db


def account_form(imap_user, dovecot, **overrides):
    data = {
        "name": "Work",
        "email_address": "me@example.test",
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "plain",
        "imap_username": imap_user.username,
        "imap_password_input": imap_user.password,
        "smtp_host": "",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": "",
        "sync_interval_minutes": 5,
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_add_account_choose_folders_and_keep_the_beat_row_in_step(alice_client, alice, imap_user, dovecot):
    dovecot.deliver(imap_user, make_raw(1), folder="Archive")
    response = alice_client.post(reverse("mail:account-add"), account_form(imap_user, dovecot))
    account = MailAccount.objects.get(owner=alice.user, name="Work")
    assert response.url == reverse("mail:account-folders", args=[account.pk])
    assert account.imap_password == imap_user.password
    with connection.cursor() as cursor:
        cursor.execute("SELECT imap_password FROM mail_mailaccount WHERE id = %s", [account.pk])
        assert imap_user.password.encode() not in bytes(cursor.fetchone()[0])

    task = PeriodicTask.objects.get(pk=account.periodic_task_id)
    assert task.task == "mail.sync_account" and task.enabled
    assert task.interval.every == 5 and task.interval.period == "minutes"
    assert task.kwargs == f'{{"account_id": "{account.pk}"}}'

    page = alice_client.get(reverse("mail:account-folders", args=[account.pk])).content.decode()
    assert "Connected" in page and "Archive" in page and "1 messages" in page
    alice_client.post(reverse("mail:account-folders", args=[account.pk]), {"folders": ["INBOX", "Archive"]})
    assert set(account.folders.filter(sync_enabled=True).values_list("name", flat=True)) == {"INBOX", "Archive"}

    edit = account_form(imap_user, dovecot, sync_interval_minutes=15, imap_password_input="")
    edit.pop("enabled")
    alice_client.post(reverse("mail:account-edit", args=[account.pk]), edit)
    account.refresh_from_db()
    task.refresh_from_db()
    assert account.imap_password == imap_user.password  # blank keeps the stored password
    assert task.interval.every == 15 and not task.enabled

    confirm = alice_client.get(reverse("mail:account-delete", args=[account.pk]))
    assert "Nothing is deleted on the mail server" in confirm.content.decode()
    alice_client.post(reverse("mail:account-delete", args=[account.pk]))
    assert not MailAccount.objects.filter(pk=account.pk).exists()
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_connection_test_reports_wrong_credentials_and_refused_ports(alice_client, alice, imap_user, dovecot):
    account = create_account(alice.user, imap_user, dovecot, imap_password="wrong")
    html = alice_client.post(reverse("mail:account-test", args=[account.pk])).content.decode()
    assert "rejected the user name or password" in html and "wrong" not in html.replace("wrong password", "")
    account.imap_port = 1
    account.save()
    html = alice_client.post(reverse("mail:account-test", args=[account.pk])).content.decode()
    assert "refused the connection" in html


def test_sync_now_shows_progress_until_done(alice_client, mail_account, imap_user, dovecot):
    for i in range(3):
        dovecot.deliver(imap_user, make_raw(i))
    response = alice_client.post(reverse("mail:sync-now", args=[mail_account.pk]))
    run_url = response.url
    page = alice_client.get(run_url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in page and 'data-status="queued"' in page  # polls while queued
    again = alice_client.post(reverse("mail:sync-now", args=[mail_account.pk]))
    assert again.url == run_url  # a second "sync now" shows the same run
    run_id = int(run_url.rstrip("/").split("/")[-1])
    from mail.sync import sync_account

    sync_account(mail_account.pk, run_id=run_id)  # what the worker does (see test_tasks for a real one)
    page = alice_client.get(run_url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in page and 'data-status="success"' in page
    assert re.search(r'data-testid="messages-new">3<', page)


def test_message_list_is_newest_first_paginated_and_unread_bold(alice_client, mail_account, imap_user, dovecot):
    for i in range(60):
        dovecot.deliver(imap_user, make_raw(i), flags="S" if i % 2 else "")
    run_sync(mail_account)
    html = alice_client.get(reverse("mail:list")).content.decode()
    subjects = re.findall(r">Message number (\d+)<", html)
    assert subjects[:3] == ["59", "58", "57"] and len(subjects) == 50
    assert "Page 1 of 2" in html and "60 messages" in html
    assert html.count('class="unread') == 25
    page2 = alice_client.get(reverse("mail:list") + "?page=2").content.decode()
    assert re.findall(r">Message number (\d+)<", page2)[-1] == "0"


def test_an_account_without_mail_says_so_and_points_to_a_sync(alice_client, mail_account):
    html = alice_client.get(reverse("mail:list")).content.decode()
    assert "No messages here yet" in html and "No mail account yet" not in html


def test_list_pages_use_a_constant_number_of_queries(alice_client, mail_account, imap_user, dovecot):
    def queries_for(url):
        with CaptureQueriesContext(connection) as ctx:
            assert alice_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    dovecot.deliver(imap_user, make_raw(0))
    run_sync(mail_account)
    inbox = mail_account.folders.get(name="INBOX")
    urls = [
        reverse("mail:list"),
        reverse("mail:account-messages", args=[mail_account.pk]),
        reverse("mail:folder-messages", args=[mail_account.pk, inbox.pk]),
    ]
    few = [queries_for(u) for u in urls]
    for i in range(1, 45):
        dovecot.deliver(imap_user, make_raw(i, attachment=b"x" if i % 3 else None))
    run_sync(mail_account)
    # Rows with everything a row can show: analysis (summary, category, scores) and tags.
    pipeline.analyse_many(pipeline.pending_for_account(mail_account.pk))
    urgent = Tag.objects.create(owner=mail_account.owner, name="Urgent-ish", color="#aa0000")
    for message in Message.objects.filter(account=mail_account)[:10]:
        TagAssignment.objects.create(owner=message.owner, tag=urgent, message=message)
    assert [queries_for(u) for u in urls] == few
    html = alice_client.get(reverse("mail:list")).content.decode()
    assert html.count(">Urgent-ish</span>") == 10
    assert len(re.findall(r'class="score u\d i\d"', html)) == 45 and html.count('class="muted summary"') == 45


def test_detail_marks_read_and_writes_back_to_the_server(alice_client, mail_account, imap_user, dovecot):
    dovecot.deliver(imap_user, make_raw(1, html=True, attachment=b"%PDF data"))
    run_sync(mail_account)
    message = Message.objects.get(account=mail_account)
    with CaptureQueriesContext(connection) as ctx:
        html = alice_client.get(reverse("mail:message", args=[message.pk])).content.decode()
    assert "Message number 1" in html and "file-1.bin" in html
    # The page lists attachments and shows the body; it never loads the raw source or attachment data.
    loaded = " ".join(q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT"))
    assert '"mail_message"."text_body"' in loaded
    assert '"mail_message"."raw"' not in loaded and '"mail_attachment"."data"' not in loaded
    message.refresh_from_db()
    assert message.seen  # at once, locally
    from mail.actions import write_back

    assert write_back(mail_account.pk) == (1, 0)  # what the write_back task runs
    assert "\\Seen" in srv.server_flags(dovecot, imap_user)[message.uid]
    attachment = message.attachments.get()
    download = alice_client.get(reverse("mail:attachment", args=[attachment.pk]))
    assert b"".join(download.streaming_content) == b"%PDF data"
    assert "attachment" in download["Content-Disposition"]


@pytest.mark.parametrize("mail_server", ALL_SERVERS, indirect=True)
def test_flag_move_and_delete_reach_the_server_without_duplicates(alice_client, server_account, mail_user, mail_server):
    """On Dovecot and Cyrus (tests/plugins/imap_servers.py): the move is a UID MOVE to "INBOX/Archive" there.
    Without CONDSTORE (cyrus-sweep) every sync sweeps all flags: the pending change must still win."""
    from mail.actions import write_back

    account, user, server = server_account, mail_user, mail_server
    for i in range(3):
        server.deliver(user, make_raw(i))
    select_folders(account, "INBOX", server.folder("Archive"), server.folder("Trash"))
    run_sync(account)
    inbox = account.folders.get(name="INBOX")
    first, second, third = inbox.messages.order_by("uid")
    archive = account.folders.get(name=server.folder("Archive"))

    alice_client.post(reverse("mail:message-action", args=[first.pk]), {"action": "flag"})
    alice_client.post(reverse("mail:message-action", args=[second.pk]), {"action": "move", "target_folder": archive.pk})
    alice_client.post(reverse("mail:message-action", args=[third.pk]), {"action": "delete"})
    second.refresh_from_db()
    assert second.folder == archive and second.uid is None  # shown in Archive at once
    assert PendingAction.objects.filter(account=account, done_at__isnull=True).count() == 3

    # A sync before the write-back must not undo the local changes.
    run_sync(account)
    first.refresh_from_db()
    assert first.flagged

    assert write_back(account.pk) == (3, 0)
    assert "\\Flagged" in srv.server_flags(server, user)[first.uid]
    assert srv.subjects(server, user, server.folder("Archive")) == ["Message number 1"]
    assert srv.subjects(server, user, server.folder("Trash")) == ["Message number 2"]
    assert srv.message_count(server, user) == 1

    run_sync(account)
    second.refresh_from_db()
    assert second.uid is not None and second.folder == archive
    assert Message.objects.filter(account=account, expunged_at__isnull=True).count() == 3
    assert Message.objects.filter(account=account).count() == 3  # moved, not copied


def test_bulk_actions_apply_to_the_selected_messages_only(alice_client, mail_account, imap_user, dovecot):
    for i in range(4):
        dovecot.deliver(imap_user, make_raw(i))
    run_sync(mail_account)
    ids = [str(pk) for pk in Message.objects.filter(account=mail_account).order_by("uid").values_list("pk", flat=True)]
    alice_client.post(reverse("mail:bulk-action"), {"action": "mark_read", "ids": ids[:2]})
    assert list(Message.objects.filter(account=mail_account).order_by("uid").values_list("seen", flat=True)) == [
        True,
        True,
        False,
        False,
    ]


def test_another_users_ids_are_not_found_on_any_url(alice, bob, imap_user, dovecot):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, make_raw(1, attachment=b"secret"))
    run_sync(account)
    message = Message.objects.get(account=account)
    attachment = message.attachments.get()
    folder = Folder.objects.get(account=account, name="INBOX")
    run = account.sync_runs.first()
    bob_client = verified_client(bob)
    gets = [
        reverse("mail:account-edit", args=[account.pk]),
        reverse("mail:account-delete", args=[account.pk]),
        reverse("mail:account-folders", args=[account.pk]),
        reverse("mail:account-messages", args=[account.pk]),
        reverse("mail:folder-messages", args=[account.pk, folder.pk]),
        reverse("mail:message", args=[message.pk]),
        reverse("mail:attachment", args=[attachment.pk]),
        reverse("mail:message-cid", args=[message.pk, "x"]),
        reverse("mail:sync-run", args=[run.pk]),
    ]
    for url in gets:
        assert bob_client.get(url).status_code == 404, url
    posts = [
        (reverse("mail:account-delete", args=[account.pk]), {}),
        (reverse("mail:account-test", args=[account.pk]), {}),
        (reverse("mail:sync-now", args=[account.pk]), {}),
        (reverse("mail:account-edit", args=[account.pk]), {"name": "hijack"}),
        (reverse("mail:message-action", args=[message.pk]), {"action": "delete"}),
    ]
    for url, data in posts:
        assert bob_client.post(url, data).status_code == 404, url
    bob_client.post(reverse("mail:bulk-action"), {"action": "mark_read", "ids": [str(message.pk)]})
    message.refresh_from_db()
    assert not message.seen and MailAccount.objects.filter(pk=account.pk, name=account.name).exists()
    bob_list = bob_client.get(reverse("mail:list")).content.decode()
    assert "Message number 1" not in bob_list and "No mail account yet" in bob_list


def test_html_is_sanitised_and_remote_images_wait_for_the_user(alice_client, mail_account, imap_user, dovecot):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.test", "me@example.test", "html"
    msg.set_content("plain")
    msg.add_alternative(
        '<p onclick="x()">Hi</p><script>alert(1)</script><img src="https://tracker.example/p.gif" alt="t">',
        subtype="html",
    )
    dovecot.deliver(imap_user, bytes(msg))
    run_sync(mail_account)
    message = Message.objects.get(account=mail_account)
    html = alice_client.get(reverse("mail:message", args=[message.pk])).content.decode()
    assert "<script>alert" not in html and "onclick" not in html and "tracker.example" not in html
    assert "Remote images are blocked" in html
    shown = alice_client.get(reverse("mail:message", args=[message.pk]) + "?images=1").content.decode()
    assert "https://tracker.example/p.gif" in shown and "<script>alert" not in shown
