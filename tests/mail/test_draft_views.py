"""The reply pages: buttons on a message, compose, rewrite in a style (htmx), send (task + status
polling), drafts list, reply settings; CSRF and owner scoping on every new URL."""

from __future__ import annotations

import re
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mail import actions, replies, sending
from mail.models import AccountSignature, Draft, Message, ReplySettings
from tests.mail.factories import raw_message
from tests.plugins import imap_helpers as srv
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync, select_folders

pytestmark = pytest.mark.django_db


@pytest.fixture
def original(mail_account, imap_user, dovecot) -> Message:
    dovecot.deliver(imap_user, raw_message())
    assert run_sync(mail_account).status == "success"
    return Message.objects.get(account=mail_account)


def start(client: Client, message: Message, kind: str = "reply", **extra) -> Draft:
    response = client.post(reverse("mail:reply", args=[message.pk]), {"kind": kind, **extra})
    draft = Draft.objects.order_by("-created_at").first()
    assert response.status_code == 302 and response.url == reverse("mail:draft", args=[draft.pk])
    return draft


def form_data(draft: Draft, **overrides) -> dict:
    data = {"to": draft.to, "cc": draft.cc, "subject": draft.subject, "body": draft.body, "style": draft.style}
    data.update(overrides)
    return data


def test_the_message_page_offers_reply_reply_all_and_forward(alice_client, original):
    html = alice_client.get(reverse("mail:message", args=[original.pk])).content.decode()
    assert f'action="{reverse("mail:reply", args=[original.pk])}"' in html
    for kind in ("reply", "reply_all", "forward"):
        assert f'name="kind" value="{kind}"' in html


def test_reply_opens_a_compose_page_with_the_draft(alice_client, original):
    draft = start(alice_client, original)
    html = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert "<h1>Reply</h1>" in html and "From me@example.test" in html
    assert 'value="&quot;Schmidt, Anna&quot; &lt;anna@example.test&gt;"' in html
    assert 'value="Re: Quarterly report"' in html
    assert "&gt; please send the report by Friday." in html
    assert 'name="style"' in html and 'hx-post="' in html and "Send</button>" in html


def test_forward_has_no_style_picker(alice_client, original):
    draft = start(alice_client, original, "forward")
    html = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert "<h1>Forward</h1>" in html and 'name="style"' not in html and "Forwarded message" in html


def test_unknown_kind_is_refused(alice_client, original):
    response = alice_client.post(reverse("mail:reply", args=[original.pk]), {"kind": "bcc-everyone"})
    assert response.status_code == 302 and not Draft.objects.exists()


def test_save_edits_and_show_address_errors(alice_client, original):
    draft = start(alice_client, original)
    url = reverse("mail:draft", args=[draft.pk])
    response = alice_client.post(url, form_data(draft, to="anna@example.test, nonsense", action="save"))
    assert response.status_code == 200
    assert "&#x27;nonsense&#x27; is not an e-mail address. Separate addresses with commas." in response.content.decode()
    assert Draft.objects.get(pk=draft.pk).to == draft.to  # nothing saved

    response = alice_client.post(url, form_data(draft, body="My own words.", subject="Re: new\nline", action="save"))
    assert response.status_code == 302
    saved = Draft.objects.get(pk=draft.pk)
    assert saved.body == "My own words." and saved.subject == "Re: new line" and saved.status == "draft"


def test_rewrite_in_another_style_with_htmx_and_without(alice_client, original):
    draft = start(alice_client, original)
    url = reverse("mail:draft", args=[draft.pk])
    response = alice_client.post(url, form_data(draft, style="decline", action="regenerate"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="draft-body">') and "<h1>" not in html
    assert "Unfortunately I have to decline" in html
    assert Draft.objects.get(pk=draft.pk).style == "decline"

    response = alice_client.post(url, form_data(draft, style="brief", subject="Kept", action="regenerate"))
    saved = Draft.objects.get(pk=draft.pk)
    assert response.status_code == 302 and saved.style == "brief" and "Thanks, noted." in saved.body
    assert saved.subject == "Kept"


def test_send_needs_a_recipient(alice_client, original):
    draft = start(alice_client, original)
    response = alice_client.post(reverse("mail:draft", args=[draft.pk]), form_data(draft, to="", action="send"))
    assert response.status_code == 200 and "Add at least one recipient." in response.content.decode()
    assert Draft.objects.get(pk=draft.pk).status == "draft"


def test_send_queues_one_task_even_when_clicked_twice(
    alice_client, original, mail_account, smtp_sink, django_capture_on_commit_callbacks
):
    mail_account.smtp_host, mail_account.smtp_port, mail_account.smtp_security = "127.0.0.1", smtp_sink.port, "plain"
    mail_account.save()
    draft = start(alice_client, original)
    url = reverse("mail:draft", args=[draft.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = alice_client.post(url, form_data(draft, action="send"))
        second = alice_client.post(url, form_data(draft, body="changed meanwhile", action="send"))
    assert first.status_code == second.status_code == 302
    assert len(callbacks) == 1
    assert Draft.objects.get(pk=draft.pk).body == draft.body  # the second click changed nothing

    page = alice_client.get(url).content.decode()
    assert 'data-status="sending"' in page and 'hx-trigger="every 1s"' in page and 'name="action"' not in page
    status_url = reverse("mail:draft-status", args=[draft.pk])
    assert "HX-Refresh" not in alice_client.get(status_url, HTTP_HX_REQUEST="true")

    sending.send_draft(draft.pk)  # what the worker does (a real worker: test_sending_through_the_worker)
    response = alice_client.get(status_url, HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true" and 'data-status="sent"' in response.content.decode()
    assert len(smtp_sink.messages) == 1
    assert "Copy in the Sent folder:\n    waiting for the mail server" in alice_client.get(url).content.decode()
    actions.write_back(mail_account.pk)
    assert "Copy in the Sent folder:\n    saved" in alice_client.get(url).content.decode()


def test_a_failed_send_shows_the_error_and_try_again(alice_client, original, mail_account):
    draft = start(alice_client, original)
    assert sending.queue_send(draft)
    sending.send_draft(draft.pk)  # no SMTP server configured
    html = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert "This account has no SMTP server" in html and "Try again</button>" in html
    assert "please send the report by Friday" in html  # the text is all still there


def test_drafts_list_is_paginated_without_n_plus_one(alice_client, original):
    html = alice_client.get(reverse("mail:drafts")).content.decode()
    assert "No drafts" in html

    def queries_for(url):
        with CaptureQueriesContext(connection) as ctx:
            response = alice_client.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries), response.content.decode()

    replies.create_draft(original, "reply")
    few, _ = queries_for(reverse("mail:drafts"))
    for _ in range(29):
        replies.create_draft(original, "forward")
    many, html = queries_for(reverse("mail:drafts"))
    assert many == few
    assert html.count("data-draft=") == 25 and "Page 1 of 2" in html and "Fwd: Quarterly report" in html
    page2 = alice_client.get(reverse("mail:drafts") + "?page=2").content.decode()
    assert page2.count("data-draft=") == 5


def test_delete_a_draft(alice_client, original):
    draft = start(alice_client, original)
    response = alice_client.post(reverse("mail:draft-delete", args=[draft.pk]))
    assert response.status_code == 302 and not Draft.objects.filter(pk=draft.pk).exists()


def test_reply_settings_and_signatures_are_saved_encrypted_and_used(alice_client, alice, original, mail_account):
    url = reverse("mail:reply-settings")
    html = alice_client.get(url).content.decode()
    field = f"signature_{mail_account.pk.hex}"
    assert f'name="{field}"' in html and f"Signature for {mail_account.name}" in html
    response = alice_client.post(
        url,
        {
            "greeting": "Good day {name},",
            "closing": "Yours",
            "address_form": "informal",
            "instructions": "",
            field: "Alice\n+44 20 7946 0958",
        },
    )
    assert response.status_code == 302
    settings = ReplySettings.objects.get(owner=alice.user)
    assert settings.greeting == "Good day {name}," and settings.address_form == "informal"
    assert AccountSignature.objects.get(account=mail_account).text == "Alice\n+44 20 7946 0958"
    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM mail_accountsignature WHERE account_id = %s", [mail_account.pk])
        assert b"7946" not in bytes(cursor.fetchone()[0])
    draft = start(alice_client, original, style="formal")
    assert draft.body.startswith("Good day Anna,\n\nThank you for your message.")
    assert "Yours\n\nAlice\n+44 20 7946 0958\n\nOn Thu" in draft.body

    bad = alice_client.post(url, {"address_form": "rude"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()


def test_every_new_url_is_scoped_to_its_owner(alice_client, alice, original, bob, dovecot):
    draft = start(alice_client, original)
    bob_client = verified_client(bob)
    bob_user = dovecot.add_user()
    bob_account = create_account(bob.user, bob_user, dovecot, name="Bob's", email_address="bob@example.test")
    for method, url, data in [
        ("post", reverse("mail:reply", args=[original.pk]), {"kind": "reply"}),
        ("get", reverse("mail:draft", args=[draft.pk]), None),
        ("post", reverse("mail:draft", args=[draft.pk]), form_data(draft, action="send")),
        ("post", reverse("mail:draft", args=[draft.pk]), form_data(draft, action="regenerate")),
        ("get", reverse("mail:draft-status", args=[draft.pk]), None),
        ("post", reverse("mail:draft-delete", args=[draft.pk]), None),
    ]:
        response = getattr(bob_client, method)(url, data) if data else getattr(bob_client, method)(url)
        assert response.status_code == 404, (method, url)
    assert Draft.objects.count() == 1 and Draft.objects.get(pk=draft.pk).status == "draft"
    assert "No drafts" in bob_client.get(reverse("mail:drafts")).content.decode()
    settings_page = bob_client.get(reverse("mail:reply-settings")).content.decode()
    assert bob_account.name.replace("'", "&#x27;") in settings_page and "Test user" not in settings_page
    bob_client.post(reverse("mail:reply-settings"), {"address_form": "formal", "greeting": "Yo"})
    assert not AccountSignature.objects.filter(account=original.account).exists()
    assert replies.reply_settings(alice.user.pk).greeting == ""


def test_new_forms_need_csrf(alice, original):
    client = Client(enforce_csrf_checks=True)
    verified = verified_client(alice)
    client.cookies = verified.cookies
    assert client.post(reverse("mail:reply", args=[original.pk]), {"kind": "reply"}).status_code == 403
    assert client.post(reverse("mail:reply-settings"), {"address_form": "formal"}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_sending_through_the_worker(celery_worker, alice, imap_user, dovecot, smtp_sink):
    account = create_account(
        alice.user, imap_user, dovecot, smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_security="plain"
    )
    dovecot.deliver(imap_user, raw_message())
    select_folders(account, "INBOX", "Sent")
    run_sync(account)
    message = Message.objects.get(account=account, folder__name="INBOX")
    client = verified_client(alice)
    draft = start(client, message)
    response = client.post(reverse("mail:draft", args=[draft.pk]), form_data(draft, body="Done.", action="send"))
    assert response.status_code == 302
    smtp_sink.wait_for_messages(1, timeout=30)
    deadline = time.monotonic() + 30
    while srv.message_count(dovecot, imap_user, "Sent") == 0:  # the write-back task the send chains
        assert time.monotonic() < deadline, "the Sent copy never arrived"
        time.sleep(0.2)
    assert Draft.objects.get(pk=draft.pk).status == "sent"
    assert "\\Answered" in srv.server_flags(dovecot, imap_user)[message.uid]
    page = client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert 'data-status="sent"' in page and re.search(r"<pre class=\"text-body\">Done.</pre>", page)

    from django_celery_results.models import TaskResult

    stored = TaskResult.objects.filter(task_name="mail.send_draft").first()
    assert stored is not None and "Done." not in (stored.task_kwargs or "") + (stored.result or "")


def test_a_stuck_send_offers_check_again(alice_client, original, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    draft = start(alice_client, original)
    assert sending.queue_send(draft)
    url = reverse("mail:draft", args=[draft.pk])
    assert "Check again" not in alice_client.get(url).content.decode()
    Draft.objects.filter(pk=draft.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert "Check again</button>" in alice_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice_client.post(url, {"action": "send"})
    assert response.status_code == 302 and len(callbacks) == 1
    assert "Check again" not in alice_client.get(url).content.decode()


def test_the_admin_shows_a_drafts_state_but_not_its_content(alice_client, original):
    from tests.plugins.accounts import create_test_user

    draft = start(alice_client, original)
    operator = create_test_user("operator")
    operator.user.is_staff = operator.user.is_superuser = True
    operator.user.save()
    client = verified_client(operator)
    for url in (reverse("admin:mail_draft_changelist"), reverse("admin:mail_draft_change", args=[draft.pk])):
        html = client.get(url).content.decode()
        assert str(draft.pk) in html and "draft" in html
        assert "anna@example.test" not in html and "Quarterly" not in html and "Friday" not in html
