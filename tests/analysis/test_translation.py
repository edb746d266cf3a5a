"""Translation by the user's language model: on demand, automatically (opt-in), masked, encrypted, scoped."""

from email.message import EmailMessage

import pytest
from django.db import connection
from django.urls import reverse

from analysis import stages
from analysis import tasks as analysis_tasks
from analysis.models import MessageTranslation, TranslationSettings
from mail.models import Message
from tests.analysis.factories import configure_provider, synced
from tests.plugins.accounts import verified_client

pytestmark = pytest.mark.django_db

GERMAN = (
    "Hallo, kannst du mir bitte die Unterlagen für das Treffen mit Jan Schmidt bis Freitag schicken? "
    "Wir brauchen sie noch vor der Besprechung. Danke und viele Grüße"
)
ENGLISH = "Hi, could you please send me the documents for the meeting by Friday? We need them before the call."
TRANSLATED = {
    "subject": "Documents",
    "body": "Hello, could you please send me the documents for the meeting with <NAME_1> by Friday?",
}


def raw(n: int, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Jan Schmidt <jan@example.test>", "me@example.test", subject
    msg["Message-ID"] = f"<tr-{n}@example.test>"
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def german(dovecot, imap_user, alice):
    account = synced(dovecot, imap_user, alice.user, [raw(1, "Unterlagen", GERMAN), raw(2, "Documents", ENGLISH)])
    analysis_tasks.analyse_account(str(account.pk))
    return Message.objects.get(message_id="tr-1@example.test")


def page(client, message) -> str:
    return client.get(reverse("mail:message", args=[message.pk])).content.decode()


def translate(client, message):
    return client.post(reverse("mail:translate", args=[message.pk]), follow=True)


def test_without_a_provider_the_button_says_what_to_set_up(alice_client, german):
    assert "Translate into English" in page(alice_client, german)
    english = Message.objects.get(message_id="tr-2@example.test")
    assert "Translate into" not in page(alice_client, english)  # already in the reader's language
    response = translate(alice_client, german)
    assert "Translating needs a language model" in response.content.decode()
    assert not MessageTranslation.objects.exists()


def test_the_translation_is_masked_on_the_way_stored_encrypted_and_shown(alice, alice_client, german, fake_llm):
    configure_provider(alice.user, fake_llm)
    fake_llm.answer = TRANSLATED
    content = translate(alice_client, german).content.decode()
    assert "could you please send me the documents for the meeting with Jan Schmidt" in content  # unmasked
    assert "into English, from German" in content and "Machine translation" in content
    fake_llm.assert_not_sent("jan@example.test", "Jan Schmidt")
    assert "into English" in fake_llm.sent_text()
    row = MessageTranslation.objects.get()
    assert (row.language, row.method) == ("en", "llm:openai:test-model")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body::text FROM analysis_messagetranslation")
        assert "documents" not in cursor.fetchone()[0]
    translate(alice_client, german)
    assert len(fake_llm.requests) == 1  # a second click shows the stored one


def test_a_failing_provider_says_so_and_stores_nothing(alice, alice_client, german, fake_llm):
    configure_provider(alice.user, fake_llm)
    fake_llm.behaviour = "http500"
    assert "The translation failed" in translate(alice_client, german).content.decode()
    assert not MessageTranslation.objects.exists()


def test_automatic_translation_is_opt_in_and_runs_in_a_task(
    alice, alice_client, german, fake_llm, django_capture_on_commit_callbacks
):
    configure_provider(alice.user, fake_llm)
    fake_llm.answer = TRANSLATED
    messages = list(Message.objects.filter(owner=alice.user))
    with django_capture_on_commit_callbacks() as queued:
        stages.queue_translations(alice.user.pk, messages)
    assert queued == []  # off by default

    response = alice_client.post(reverse("mail:translation-settings"), {"auto_translate": "1", "language": "en"})
    assert response.status_code == 302
    assert TranslationSettings.objects.get(owner=alice.user).auto_translate
    assert "translated into English" in alice_client.get(response.url).content.decode()
    ids = stages.translation.pending_translations(alice.user.pk, messages)
    assert ids == [german.pk]  # only the foreign one
    assert analysis_tasks.translate_messages(alice.user.pk, [str(german.pk)]) == {"made": 1, "failed": 0}
    assert MessageTranslation.objects.get().message == german
    assert stages.translation.pending_translations(alice.user.pk, messages) == []


def test_another_users_message_cannot_be_translated(bob, german, fake_llm):
    response = verified_client(bob).post(reverse("mail:translate", args=[german.pk]))
    assert response.status_code == 404 and fake_llm.requests == []
