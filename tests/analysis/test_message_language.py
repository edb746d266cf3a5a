"""The detected language through the pipeline: stored, shown, given to the model, and backfilled."""

import io
from email.message import EmailMessage

import pytest
from django.core.management import call_command
from django.urls import reverse

from analysis import tasks as analysis_tasks
from analysis.models import MessageAnalysis
from tests.analysis.factories import configure_provider, synced

pytestmark = pytest.mark.django_db

GERMAN = (
    "Hallo, kannst du mir bitte die Unterlagen für das Treffen bis Freitag schicken? "
    "Wir brauchen sie noch vor der Besprechung. Danke und viele Grüße"
)
FRENCH = "Bonjour, pouvez-vous m'envoyer le contrat avant demain ? Nous en avons besoin pour la réunion. Merci"


def raw(n: int, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Jan <jan@example.test>", "me@example.test", subject
    msg["Message-ID"] = f"<lang-{n}@example.test>"
    msg.set_content(body)
    return msg.as_bytes()


def test_each_message_gets_its_language_and_the_page_names_it(dovecot, imap_user, alice, alice_client):
    account = synced(
        dovecot, imap_user, alice.user,
        [raw(1, "Unterlagen", GERMAN), raw(2, "Contrat", FRENCH), raw(3, "OK", "ok")],
    )  # fmt: skip
    assert analysis_tasks.analyse_account(str(account.pk)) == {"done": 3, "failed": 0}
    by_id = {
        a.message.message_id: a for a in MessageAnalysis.objects.filter(owner=alice.user).select_related("message")
    }
    assert by_id["lang-1@example.test"].language == "de"
    assert by_id["lang-2@example.test"].language == "fr"
    assert by_id["lang-3@example.test"].language == ""  # too short to tell: unknown, not a guess

    page = alice_client.get(reverse("mail:message", args=[by_id["lang-1@example.test"].message_id]))
    assert '<span title="detected language">German</span>' in page.content.decode()
    unknown = alice_client.get(reverse("mail:message", args=[by_id["lang-3@example.test"].message_id]))
    assert 'title="detected language"' not in unknown.content.decode()


def test_the_language_model_is_asked_to_summarise_in_the_messages_language(fake_llm, dovecot, imap_user, alice):
    configure_provider(alice.user, fake_llm)
    account = synced(dovecot, imap_user, alice.user, [raw(4, "Unterlagen", GERMAN)])
    analysis_tasks.analyse_account(str(account.pk))
    assert "the language with code 'de'" in fake_llm.sent_text()


def test_backfill_gives_older_analyses_their_language_without_reanalysing(dovecot, imap_user, alice, bob):
    account = synced(dovecot, imap_user, alice.user, [raw(5, "Unterlagen", GERMAN), raw(6, "Contrat", FRENCH)])
    analysis_tasks.analyse_account(str(account.pk))
    MessageAnalysis.objects.filter(owner=alice.user).update(language="", method="legacy")  # stored before detection

    out = io.StringIO()
    call_command("backfill_language", "--user", bob.user.username, stdout=out)  # another user's: untouched
    assert "Checked 0 message(s)" in out.getvalue()
    assert set(MessageAnalysis.objects.filter(owner=alice.user).values_list("language", flat=True)) == {""}

    call_command("backfill_language", "--user", alice.user.username, stdout=out)
    assert "Checked 2 message(s); 2 have a known language." in out.getvalue()
    rows = MessageAnalysis.objects.filter(owner=alice.user)
    assert sorted(rows.values_list("language", flat=True)) == ["de", "fr"]
    assert set(rows.values_list("method", flat=True)) == {"legacy"}  # detected, not analysed again

    out = io.StringIO()
    call_command("backfill_language", stdout=out)  # resumable: nothing left to do
    assert "Checked 0 message(s)" in out.getvalue()
