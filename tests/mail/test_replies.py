"""Composing replies (mail/replies.py): recipients, subjects, quoting, forwards, styles and the LLM path.

Messages are real: delivered to Dovecot and synced, so the service reads what sync stored.
The only stand-in is the LLM provider (the loopback fake server of tests/plugins/llm_servers.py).
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from analysis.models import ProviderSettings
from mail import replies
from mail.models import AccountSignature, Draft, Message, ReplySettings
from tests.mail.factories import ME, raw_message
from tests.plugins.llm_servers import refused_base_url
from tests.plugins.mail import create_account, run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(mail_account, imap_user, dovecot):
    """stored(**raw_message options) -> the synced Message."""
    counter = iter(range(1, 100))

    def make(folder: str = "INBOX", **options) -> Message:
        options.setdefault("message_id", f"<orig-{next(counter)}@example.test>")
        dovecot.deliver(imap_user, raw_message(**options), folder=folder)
        if folder != "INBOX":
            from tests.plugins.mail import select_folders

            select_folders(mail_account, "INBOX", folder)
        assert run_sync(mail_account).status == "success"
        return Message.objects.get(account=mail_account, message_id=options["message_id"].strip("<>"))

    return make


def addresses(text: str) -> list[str]:
    return [address for _name, address in replies.parse_address_list(text)]


# --- recipients -----------------------------------------------------------------------------------


def test_reply_goes_to_the_sender_with_the_display_name(stored):
    draft = replies.create_draft(stored(), "reply")
    assert draft.to == '"Schmidt, Anna" <anna@example.test>'
    assert draft.cc == ""


def test_reply_prefers_reply_to(stored):
    draft = replies.create_draft(stored(reply_to="List <list@example.test>"), "reply")
    assert addresses(draft.to) == ["list@example.test"]


def test_reply_all_keeps_everyone_but_me_once(stored):
    draft = replies.create_draft(stored(), "reply_all")
    assert addresses(draft.to) == ["anna@example.test", "bob@example.test"]
    assert "Bob Builder <bob@example.test>" in draft.to  # names come from the stored source
    assert addresses(draft.cc) == ["carol@example.test"]  # me (any case) and bob (already in To) dropped


def test_my_other_accounts_are_not_recipients_either(stored, alice, dovecot):
    other_user = dovecot.add_user()
    create_account(alice.user, other_user, dovecot, name="Second", email_address="carol@example.test")
    draft = replies.create_draft(stored(), "reply_all")
    assert addresses(draft.cc) == []


def test_replying_to_my_own_sent_message_writes_to_its_recipients(stored):
    message = stored(folder="Sent", sender=f"Me <{ME}>", to="Dave <dave@example.test>", cc="erin@example.test")
    assert addresses(replies.create_draft(message, "reply").to) == ["dave@example.test"]
    both = replies.create_draft(message, "reply_all")
    assert addresses(both.to) == ["dave@example.test"] and addresses(both.cc) == ["erin@example.test"]


def test_address_lists_are_read_as_typed_and_wrong_entries_named():
    assert replies.parse_address_list('"Doe, Jane" <jane@example.test>; bob@example.test,\nBOB@example.test') == [
        ("Doe, Jane", "jane@example.test"),
        ("", "bob@example.test"),
    ]
    with pytest.raises(replies.AddressListError, match="'not an address'"):
        replies.parse_address_list("ok@example.test, not an address")


# --- subjects, threading headers, quoting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Lunch", "Re: Lunch"),
        ("Re: Lunch", "Re: Lunch"),
        ("RE: AW: Re[2]: Lunch", "Re: Lunch"),
        ("Fwd: Lunch", "Re: Fwd: Lunch"),
        ("", "Re:"),
        ("Reminder: lunch", "Re: Reminder: lunch"),
    ],
)
def test_reply_subjects_do_not_stack(subject, expected):
    assert replies.reply_subject(subject) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Lunch", "Fwd: Lunch"),
        ("Fwd: Lunch", "Fwd: Lunch"),
        ("FW: Lunch", "FW: Lunch"),
        ("Re: Lunch", "Fwd: Re: Lunch"),
    ],
)
def test_forward_subjects_do_not_stack(subject, expected):
    assert replies.forward_subject(subject) == expected


def test_reply_carries_the_thread_and_quotes_the_original(stored):
    message = stored(subject="Re: Quarterly report")
    draft = replies.create_draft(message, "reply", style="formal")
    assert draft.subject == "Re: Quarterly report"
    assert draft.in_reply_to == message.message_id
    assert draft.references == ["root@example.test", "middle@example.test", message.message_id]
    assert draft.body.startswith("Dear Anna Schmidt,\n\nThank you for your message.")
    assert (
        'On Thu, 5 Mar 2026 at 09:30, "Schmidt, Anna" <anna@example.test> wrote:\n'
        "> Hello,\n>\n> please send the report by Friday.\n>\n> Anna"
    ) in draft.body
    assert draft.generated_by == "template" and draft.fallback_reason == ""
    assert draft.status == "draft" and draft.account_id == message.account_id


def test_forward_has_the_original_headers_and_no_threading(stored):
    message = stored(attachment=b"%PDF-1.4 report")
    draft = replies.create_draft(message, "forward")
    assert draft.to == "" and draft.cc == "" and draft.subject == "Fwd: Quarterly report"
    assert draft.in_reply_to == "" and draft.references == []
    block = draft.body.split("---------- Forwarded message ----------\n", 1)[1]
    assert block.startswith(
        'From: "Schmidt, Anna" <anna@example.test>\nDate: Thu, 5 Mar 2026 at 09:30\nSubject: Quarterly report\n'
        "To: Me Myself <me@example.test>, Bob Builder <bob@example.test>\n"
        "Cc: carol@example.test, ME@EXAMPLE.TEST, bob@example.test\n\nHello,"
    )
    assert "> " not in draft.body  # forwarded as it was, not quoted


# --- styles and settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "start", "end"),
    [
        ("formal", "Dear Anna Schmidt,", "Kind regards,"),
        ("friendly", "Hi Anna Schmidt,", "Best wishes,"),
        ("brief", "Hi Anna Schmidt,\n\nThanks, noted.", "Best,"),
        ("decline", "Dear Anna Schmidt,\n\nThank you for thinking of me. Unfortunately I have to decline", "Kind"),
    ],
)
def test_the_four_templates(stored, style, start, end):
    body = replies.create_draft(stored(), "reply", style=style).body
    reply = body.split("\n\nOn Thu,", 1)[0]
    assert reply.startswith(start) and end in reply.rsplit("\n\n", 1)[-1]


def test_greeting_closing_address_form_and_signature_are_used(stored, mail_account, alice):
    settings = ReplySettings(owner=alice.user, greeting="Hallo {name},", closing="Viele Grüße", address_form="informal")
    settings.save()
    AccountSignature.objects.create(owner=alice.user, account=mail_account, text="Alice\nACME Ltd.")
    body = replies.create_draft(stored(), "reply", style="brief").body
    assert body.startswith("Hallo Anna,\n\nThanks, noted.\n\nViele Grüße\n\nAlice\nACME Ltd.\n\nOn Thu,")
    forward = replies.create_draft(stored(), "forward").body
    assert forward.startswith("\n\nAlice\nACME Ltd.\n\n---------- Forwarded message")


def test_a_sender_without_a_name_gets_a_plain_hello(stored):
    body = replies.create_draft(stored(sender="noreply@example.test"), "reply", style="formal").body
    assert body.startswith("Hello,\n\nThank you")


def test_rewrite_changes_only_the_text(stored):
    draft = replies.create_draft(stored(), "reply", style="formal")
    replies.update_draft(draft, to="x@example.test", cc="", subject="Changed", body="mine")
    replies.rewrite(draft, "decline")
    draft = Draft.objects.get(pk=draft.pk)
    assert draft.style == "decline" and "decline this time" in draft.body
    assert draft.to == "x@example.test" and draft.subject == "Changed"


def test_a_sent_draft_can_no_longer_be_edited(stored):
    draft = replies.create_draft(stored(), "reply")
    Draft.objects.filter(pk=draft.pk).update(status="sent")
    assert replies.update_draft(draft, to="x@example.test", cc="", subject="s", body="b") is False
    assert Draft.objects.get(pk=draft.pk).subject == "Re: Quarterly report"


def test_draft_content_is_encrypted_at_rest(stored):
    from django.db import connection

    draft = replies.create_draft(stored(), "reply")
    with connection.cursor() as cursor:
        cursor.execute('SELECT "to", subject, body FROM mail_draft WHERE id = %s', [draft.pk])
        row = b"".join(bytes(v) for v in cursor.fetchone())
    assert b"anna@example.test" not in row and b"Quarterly" not in row and b"Friday" not in row


# --- with an LLM ---------------------------------------------------------------------------------------


def use_provider(owner, base_url: str, *, replies_too: bool = True) -> None:
    row = ProviderSettings(
        owner=owner, enabled=True, kind="openai", base_url=base_url, model="gpt-4o-mini", timeout_seconds=5
    )
    row.use_for_replies = replies_too
    row.api_key = "sk-test-key-0123456789"
    row.save()


def test_the_provider_writes_the_draft_without_seeing_addresses(stored, fake_llm, alice, mail_account):
    use_provider(alice.user, fake_llm.base_url)
    ReplySettings(owner=alice.user, closing="Cheers", instructions="Keep it short.").save()
    AccountSignature.objects.create(owner=alice.user, account=mail_account, text="Alice Example\n+44 20 7946 0958")
    fake_llm.reply_text = "Dear <NAME_1>,\n\nthe report is on its way.\n\nCheers"
    message = stored(body="Hi,\nplease call me on +49 171 1234567 or write to anna.private@example.test.\nAnna")
    draft = replies.create_draft(message, "reply_all", style="friendly")

    assert draft.generated_by == "llm:openai:gpt-4o-mini" and draft.fallback_reason == ""
    assert draft.body.startswith("Dear Anna Schmidt,\n\nthe report is on its way.\n\nCheers\n\nAlice Example")
    assert "\n\nOn Thu, 5 Mar 2026 at 09:30," in draft.body  # the quote is added here, not by the model
    fake_llm.assert_not_sent(
        "anna@example.test", ME, "bob@example.test", "carol@example.test", "anna.private@example.test",
        "+49 171 1234567", "Alice Example", "+44 20 7946 0958", "Anna Schmidt",
    )  # fmt: skip
    prompt = fake_llm.requests[-1].prompt_text()
    assert "Keep it short." in prompt and "warm and friendly" in prompt


@pytest.mark.parametrize("behaviour", ["http500", "disconnect", "refuse_auth"])
def test_provider_failure_falls_back_to_the_template(stored, fake_llm, alice, behaviour):
    use_provider(alice.user, fake_llm.base_url)
    fake_llm.behaviour = behaviour
    draft = replies.create_draft(stored(), "reply", style="formal")
    assert draft.generated_by == "template"
    assert draft.body.startswith("Dear Anna Schmidt,\n\nThank you for your message.")
    assert draft.fallback_reason.startswith("OpenAI-compatible")
    assert "FAKE-LLM-ERROR-BODY" not in draft.fallback_reason and "sk-test" not in draft.fallback_reason


def test_unreachable_provider_and_provider_not_for_replies(stored, fake_llm, alice):
    use_provider(alice.user, refused_base_url())
    draft = replies.create_draft(stored(), "reply")
    assert draft.generated_by == "template" and "could not be reached" in draft.fallback_reason
    ProviderSettings.objects.filter(owner=alice.user).update(base_url=fake_llm.base_url, use_for_replies=False)
    draft = replies.create_draft(stored(), "reply")
    assert draft.generated_by == "template" and draft.fallback_reason == "" and fake_llm.requests == []


def test_a_long_references_chain_keeps_its_root_and_the_newest(stored):
    chain = " ".join(f"<ref-{i}@example.test>" for i in range(40))
    draft = replies.create_draft(stored(references=chain), "reply")
    assert len(draft.references) == 20
    assert draft.references[0] == "ref-0@example.test" and draft.references[1] == "ref-22@example.test"
    assert draft.references[-2:] == ["ref-39@example.test", draft.in_reply_to]


def test_an_html_only_original_is_quoted_as_text(stored, mail_account, imap_user, dovecot):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Web Shop <shop@example.test>", ME, "Your order"
    msg["Message-ID"] = "<html-only@example.test>"
    msg.set_content("<p>Thanks for your <b>order</b>.</p><p>It ships <i>today</i>.</p>", subtype="html")
    dovecot.deliver(imap_user, bytes(msg))
    run_sync(mail_account)
    message = Message.objects.get(message_id="html-only@example.test")
    body = replies.create_draft(message, "reply").body
    assert "> Thanks for your order.\n>\n> It ships today." in body and "<p>" not in body


def test_a_slow_provider_is_cut_off_below_the_request_timeout(stored, fake_llm, alice, settings):
    use_provider(alice.user, fake_llm.base_url)
    ProviderSettings.objects.filter(owner=alice.user).update(timeout_seconds=300)
    settings.MAILHELPER_REPLY_LLM_TIMEOUT = 1.0
    fake_llm.behaviour, fake_llm.slow_seconds = "slow", 10
    import time

    started = time.monotonic()
    draft = replies.create_draft(stored(), "reply")
    assert time.monotonic() - started < 5
    assert draft.generated_by == "template" and "did not answer within 1 s" in draft.fallback_reason
