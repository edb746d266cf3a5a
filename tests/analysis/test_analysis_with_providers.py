"""A user's LLM provider in the pipeline: used when it answers, masked, and fallen back from."""

import pytest
from django.db import connection
from django.urls import reverse

from analysis import tasks as analysis_tasks
from analysis.models import MessageAnalysis, ProviderSettings
from tests.analysis.factories import URGENT, configure_provider, synced

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["ollama", "openai", "anthropic"])
def test_the_provider_analyses_masked_mail(kind, fake_llm, dovecot, imap_user, alice):
    configure_provider(alice.user, fake_llm, kind)
    account = synced(dovecot, imap_user, alice.user, [URGENT % 1])
    assert analysis_tasks.analyse_account(str(account.pk)) == {"done": 1, "failed": 0}
    analysis = MessageAnalysis.objects.get(message__account=account)
    assert analysis.method.startswith(f"llm:{kind}:") and not analysis.fallback_reason
    assert len(fake_llm.requests) == 1
    fake_llm.assert_not_sent("boss@work.example", "me@example.test", "Boss")
    assert "contract" in fake_llm.sent_text()  # the text itself does go, masked


@pytest.mark.parametrize("behaviour", ["http500", "not_json", "invalid_schema", "refuse_auth"])
def test_provider_failures_fall_back_to_the_builtin_analyser(behaviour, fake_llm, dovecot, imap_user, alice):
    configure_provider(alice.user, fake_llm)
    fake_llm.behaviour = behaviour
    account = synced(dovecot, imap_user, alice.user, [URGENT % 2])
    assert analysis_tasks.analyse_account(str(account.pk)) == {"done": 1, "failed": 0}
    analysis = MessageAnalysis.objects.get(message__account=account)
    assert analysis.state == "done" and analysis.method.startswith("builtin")
    assert analysis.fallback_reason and "sk-test-key" not in analysis.fallback_reason
    assert "contract" not in analysis.fallback_reason


def test_a_slow_provider_times_out_and_falls_back(fake_llm, dovecot, imap_user, alice):
    configure_provider(alice.user, fake_llm, timeout_seconds=1)
    fake_llm.behaviour = "slow"
    account = synced(dovecot, imap_user, alice.user, [URGENT % 3])
    analysis_tasks.analyse_account(str(account.pk))
    analysis = MessageAnalysis.objects.get(message__account=account)
    assert analysis.method.startswith("builtin") and "time" in analysis.fallback_reason.lower()


def test_settings_page_stores_the_key_encrypted_and_tests_the_provider(fake_llm, alice, alice_client):
    response = alice_client.post(
        reverse("mail:analysis-settings"),
        {
            "enabled": "on",
            "kind": "openai",
            "base_url": fake_llm.base_url,
            "model": "gpt-4o-mini",
            "timeout_seconds": 5,
            "use_for_replies": "on",
            "api_key_input": "sk-test-key-0123456789",
        },
    )
    assert response.status_code == 302
    row = ProviderSettings.objects.get(owner=alice.user)
    assert row.api_key == "sk-test-key-0123456789"
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM mail_providersettings WHERE id = %s", [row.pk])
        assert b"sk-test-key" not in bytes(cursor.fetchone()[0])
    page = alice_client.get(reverse("mail:analysis-settings")).content.decode()
    assert "sk-test-key" not in page
    report = alice_client.post(reverse("mail:provider-test")).content.decode()
    assert 'class="notice ok"' in report
    fake_llm.behaviour = "refuse_auth"
    report = alice_client.post(reverse("mail:provider-test")).content.decode()
    assert 'class="notice error"' in report and "sk-test-key" not in report
