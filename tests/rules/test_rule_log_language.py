"""The rule log, written by the analysis worker in no language, is read in the reader's language."""

from __future__ import annotations

import html

from django.urls import reverse

from mail.models import Message
from rules.models import Rule, RuleLog
from rules.service import run_on_messages
from tags.models import Tag
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, create_pop3_account, make_raw, run_sync


def log_page(alice, rule: Rule, language: str) -> str:
    alice.user.language = language
    alice.user.save(update_fields=["language"])
    return html.unescape(verified_client(alice).get(reverse("rules:log", args=[rule.pk])).content.decode())


def test_the_action_list_shows_in_german_and_in_english(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, make_raw(1))
    run_sync(account)
    tag = Tag.objects.create(owner=alice.user, name="Arbeit")
    rule = Rule.objects.create(
        owner=alice.user, name="all", order=1,
        definition={"match": "all", "conditions": [{"field": "subject", "op": "contains", "value": "number"}],
                    "actions": [{"type": "set_urgency", "value": 3},
                                {"type": "set_category", "value": "action_required"},
                                {"type": "add_tag", "value": tag.pk}, {"type": "mark_read"}]},
    )  # fmt: skip
    assert run_on_messages(alice.user.pk, list(Message.objects.filter(account=account))) == 1
    assert RuleLog.objects.get(rule=rule).success

    german = log_page(alice, rule, "de")
    assert (
        f"<td>Dringlichkeit auf 3 (hoch) setzen; Kategorie auf Handlungsbedarf setzen; "
        f"Schlagwort „Schlagwort {tag.pk}“ hinzufügen; als gelesen markieren</td>"
    ) in german
    english = log_page(alice, rule, "en")
    assert (
        f"<td>set urgency to 3 (high); set category to Action required; add tag “tag {tag.pk}”; mark as read</td>"
    ) in english


def test_an_error_and_an_old_plain_row_show(dovecot, imap_user, alice):
    account = create_pop3_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, make_raw(2))
    dovecot.deliver(imap_user, make_raw(3))
    run_sync(account)
    rule = Rule.objects.create(
        owner=alice.user, name="away", order=1,
        definition={"match": "all", "conditions": [{"field": "subject", "op": "contains", "value": "number"}],
                    "actions": [{"type": "archive"}]},
    )  # fmt: skip
    message, older = Message.objects.filter(account=account).order_by("uid")
    run_on_messages(alice.user.pk, [message])
    RuleLog.objects.create(owner=alice.user, rule=rule, message=older, actions=["flag (from before)"], error="")

    german = log_page(alice, rule, "de")
    assert "<td>archivieren</td>" in german and "<td>flag (from before)</td>" in german
    assert "Nicht verschoben: POP3-Konten haben auf dem Server nur einen Posteingang" in german
