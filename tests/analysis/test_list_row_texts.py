"""The list rows' per-page texts (analysis.rows._PageTexts) come out in the reader's language."""

from __future__ import annotations

import html

from django.urls import reverse

from analysis import pipeline
from analysis.models import MessageAnalysis
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, make_raw, run_sync


def list_page(alice, language: str) -> str:
    alice.user.language = language
    alice.user.save(update_fields=["language"])
    return html.unescape(verified_client(alice).get(reverse("mail:list")).content.decode())


def test_row_labels_and_tooltips_follow_the_language(dovecot, imap_user, alice):
    dovecot.deliver(imap_user, make_raw(1))
    account = create_account(alice.user, imap_user, dovecot)
    run_sync(account)
    pipeline.analyse_pending(account.pk)
    analysis = MessageAnalysis.objects.get(message__account=account)
    assert analysis.state == MessageAnalysis.State.DONE
    score = f"{analysis.final_urgency}, %s {analysis.final_importance}, %s {analysis.confidence:.2f}"
    sender = analysis.message.from_name or analysis.message.from_address

    german = list_page(alice, "de")
    assert f'aria-label="Nachricht von {sender} auswählen"' in german
    assert f'title="Dringlichkeit {score % ("Wichtigkeit", "Sicherheit")}"' in german

    english = list_page(alice, "en")
    assert f'aria-label="Select message from {sender}"' in english
    assert f'title="urgency {score % ("importance", "confidence")}"' in english
