"""The consent, end to end over HTTP: the add page's button, the provider's consent page (the fake provider
on loopback TLS), the callback, the account it makes, and the mailbox reached with the token on Dovecot."""

from __future__ import annotations

import ssl
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from mail.models import MailAccount
from tests.plugins.accounts import verified_client
from tests.plugins.mail import make_raw, run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(settings, oauth_server, dovecot_oauth):
    settings.MAILHELPER_OAUTH_PROVIDERS = {
        "generic": oauth_server.provider_settings(dovecot_oauth.host, dovecot_oauth.port)
    }
    return oauth_server


def start(client, account: MailAccount | None = None, email: str = "") -> str:
    data = {"account": str(account.pk)} if account else {"provider": "generic", "email": email}
    response = client.post(reverse("mail:oauth-start"), data)
    assert response.status_code == 302
    return response["Location"]


def consent(oauth_server, location: str, allow: bool = True) -> str:
    """Through the provider's real consent page: the URL it sends the browser back to."""
    with httpx.Client(verify=ssl.create_default_context(cafile=oauth_server.cert_path)) as browser:
        page = browser.get(location)
        assert page.status_code == 200 and "Allow Mailhelper to read and send mail" in page.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        answer = browser.post(oauth_server.url("/decide"), data={**query, "decision": "allow" if allow else "deny"})
    assert answer.status_code == 302
    return answer.headers["Location"]


def callback(client, url: str):
    parts = urlsplit(url)
    assert parts.path == reverse("mail:oauth_callback")
    return client.get(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, follow=True)


def test_the_add_page_offers_only_configured_providers(alice_client, settings, provider):
    page = alice_client.get(reverse("mail:account-add"))
    assert "Sign in with Example Mail" in page.content.decode()
    # The browser enforces form-action on the redirect to the provider: this page (only) names its origin.
    origin = provider.url("")
    assert f"form-action 'self' {origin};" in page["Content-Security-Policy"]
    assert origin not in alice_client.get(reverse("mail:drafts"))["Content-Security-Policy"]
    settings.MAILHELPER_OAUTH_PROVIDERS = {"google": {"client_id": "", "client_secret": ""}}
    html = alice_client.get(reverse("mail:account-add")).content.decode()
    assert "Sign in with" not in html and "Add a mail account" in html


def test_sign_in_makes_an_account_that_syncs_with_its_token(alice, alice_client, provider, oauth_user, dovecot_oauth):
    dovecot_oauth.deliver(oauth_user, make_raw(1, subject="Hello OAuth"))
    location = start(alice_client)
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(provider.url("/authorize"))
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == ["http://localhost:8000" + reverse("mail:oauth_callback")]

    response = callback(alice_client, consent(provider, location))

    html = response.content.decode()
    assert f"Signed in with Example Mail as {oauth_user.username}" in html
    assert "INBOX" in html  # the folder page reached the mailbox with the token
    account = MailAccount.objects.get(owner=alice.user)
    assert account.uses_oauth and account.imap_username == oauth_user.username
    assert account.oauth_refresh_token.startswith("rt-") and account.oauth_expires_at > timezone.now()
    assert run_sync(account).status == "success"
    assert account.messages.count() == 1
    assert AuditEvent.objects.filter(user=alice.user, kind="oauth_granted").exists()
    edit = alice_client.get(reverse("mail:account-edit", args=[account.pk])).content.decode()
    assert "Signs in with Example Mail (OAuth2)" in edit and 'name="imap_password_input"' not in edit


def test_a_callback_works_once_and_only_in_the_session_that_started_it(alice, alice_client, bob, provider, oauth_user):
    back = consent(provider, start(alice_client))

    stolen = callback(verified_client(bob), back)  # another browser presenting alice's code and state
    assert "This sign-in was not started here" in stolen.content.decode()
    assert not MailAccount.objects.exists()

    assert "Signed in with Example Mail" in callback(alice_client, back).content.decode()
    replay = callback(alice_client, back)
    assert "This sign-in was not started here" in replay.content.decode()
    assert MailAccount.objects.count() == 1


def test_declining_at_the_provider_changes_nothing(alice_client, provider, oauth_user):
    response = callback(alice_client, consent(provider, start(alice_client), allow=False))
    assert "You did not allow access at Example Mail: nothing was changed." in response.content.decode()
    assert not MailAccount.objects.exists()


def test_a_consent_without_mail_access_is_refused_with_the_reason(alice_client, provider, oauth_user):
    provider.scope = "openid email"
    response = callback(alice_client, consent(provider, start(alice_client)))
    assert "did not grant access to your mail" in response.content.decode()
    assert not MailAccount.objects.exists()


def test_sign_in_again_renews_the_tokens_and_syncs(alice, alice_client, provider, oauth_user, dovecot_oauth):
    callback(alice_client, consent(provider, start(alice_client)))
    account = MailAccount.objects.get(owner=alice.user)
    old_refresh = account.oauth_refresh_token
    provider.revoke_all(oauth_user.username)
    MailAccount.objects.filter(pk=account.pk).update(oauth_expires_at=timezone.now() - timedelta(minutes=1))
    account.refresh_from_db()
    assert run_sync(account).status == "failed"

    listing = alice_client.get(reverse("mail:accounts")).content.decode()
    assert "sign in again" in listing and "Sign in again with Example Mail" in listing

    response = callback(alice_client, consent(provider, start(alice_client, account)))
    assert "Signed in again" in response.content.decode()
    account.refresh_from_db()
    assert account.status != MailAccount.Status.NEEDS_ATTENTION and account.oauth_refresh_token != old_refresh
    assert run_sync(account).status == "success"


def test_sign_in_again_as_another_mailbox_is_refused(alice, alice_client, provider, oauth_user, dovecot_oauth):
    callback(alice_client, consent(provider, start(alice_client)))
    account = MailAccount.objects.get(owner=alice.user)
    old_access = account.oauth_access_token
    provider.user = "someone.else@example.test"

    response = callback(alice_client, consent(provider, start(alice_client, account)))

    assert f"this account is {oauth_user.username}" in response.content.decode()
    account.refresh_from_db()
    assert account.oauth_access_token == old_access


def test_nobody_signs_in_again_for_another_users_account(alice, alice_client, bob, provider, oauth_user):
    callback(alice_client, consent(provider, start(alice_client)))
    account = MailAccount.objects.get(owner=alice.user)
    response = verified_client(bob).post(
        reverse("mail:oauth-start"), {"provider": "generic", "account": str(account.pk)}
    )
    assert response.status_code == 404


def test_unknown_provider_and_bad_hint(alice_client, provider):
    response = alice_client.post(reverse("mail:oauth-start"), {"provider": "nosuch"}, follow=True)
    assert "not set up on this server" in response.content.decode()
    response = alice_client.post(
        reverse("mail:oauth-start"), {"provider": "generic", "email": "no address"}, follow=True
    )
    assert "Enter a valid email address" in response.content.decode()
    assert alice_client.get(reverse("mail:oauth-start")).status_code == 405
