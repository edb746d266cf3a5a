"""OAuth2 accounts against real servers: Dovecot checks every token with the fake provider's introspection
(its `oauth2` passdb), the SMTP sink takes AUTH XOAUTH2 with the provider's live tokens, and the worker-side
refresh talks to the provider's token endpoint over TLS. Removing an account revokes its consent there."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.deletion import delete_user
from mail import imap, oauth, sending
from mail.models import MailAccount, Message
from mail.sync import server_config
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider_settings(settings, oauth_server, dovecot_oauth, smtp_sink_oauth):
    settings.MAILHELPER_OAUTH_PROVIDERS = {
        "generic": oauth_server.provider_settings(
            dovecot_oauth.host, dovecot_oauth.port, "127.0.0.1", smtp_sink_oauth.port
        )
    }
    return settings


def oauth_account(owner, oauth_user, dovecot, oauth_server, **overrides) -> MailAccount:
    access, refresh = oauth_server.issue(oauth_user.username)
    fields = {
        "imap_password": "",
        "auth_method": MailAccount.AuthMethod.OAUTH2,
        "oauth_provider": "generic",
        "oauth_access_token": access,
        "oauth_refresh_token": refresh,
        "oauth_expires_at": timezone.now() + timedelta(hours=1),
        "email_address": oauth_user.username,
        **overrides,
    }
    return create_account(owner, oauth_user, dovecot, **fields)


def test_imap_signs_in_with_oauthbearer_and_a_sync_stores_the_mail(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth
):
    dovecot_oauth.deliver(oauth_user, make_raw(1, subject="Token mail"))
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)

    run = run_sync(account)

    assert run.status == "success", run.error
    assert [m.subject for m in Message.objects.filter(account=account)] == ["Token mail"]
    assert f"user=<{oauth_user.username}>, method=OAUTHBEARER" in dovecot_oauth.log_tail(200)


def test_xoauth2_where_the_server_offers_only_that(alice, provider_settings, oauth_server, oauth_user, dovecot_xoauth2):
    user = dovecot_xoauth2.add_user(oauth_user.username)
    account = oauth_account(alice.user, user, dovecot_xoauth2, oauth_server)

    report = imap.check_connection(server_config(account))

    assert report.ok, report
    assert f"user=<{user.username}>, method=XOAUTH2" in dovecot_xoauth2.log_tail(200)


def test_a_stale_token_is_refreshed_before_login_and_stored_encrypted(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth
):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    old_access, old_refresh = account.oauth_access_token, account.oauth_refresh_token
    oauth_server.expire_access_tokens()  # the provider has let it lapse; our clock says it still lasts
    MailAccount.objects.filter(pk=account.pk).update(oauth_expires_at=timezone.now() + timedelta(seconds=30))
    account.refresh_from_db()

    assert run_sync(account).status == "success"

    account.refresh_from_db()
    assert account.oauth_access_token not in ("", old_access)
    assert account.oauth_refresh_token not in ("", old_refresh)  # this provider rotates them
    assert account.oauth_expires_at > timezone.now() + timedelta(minutes=50)
    raw = MailAccount.objects.filter(pk=account.pk).values_list("oauth_access_token", "oauth_refresh_token").get()
    assert account.oauth_access_token.encode() not in bytes(raw[0]) and b"rt-" not in bytes(raw[1])
    assert [r["grant_type"] for r in oauth_server.token_requests] == ["refresh_token"]


def test_a_fresh_token_is_used_without_asking_the_provider(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth
):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    assert oauth.access_token(account) == account.oauth_access_token
    assert oauth_server.token_requests == []


def test_withdrawn_consent_marks_the_account_sign_in_again(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth
):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server, oauth_expires_at=timezone.now())
    oauth_server.revoke_all(oauth_user.username)

    run = run_sync(account)

    assert run.status == "failed" and run.error_kind == "login"
    account.refresh_from_db()
    assert account.status == MailAccount.Status.NEEDS_ATTENTION
    assert "no longer accepts this sign-in" in account.status_message and "sign in again" in account.status_message
    assert account.oauth_refresh_token not in account.status_message


def test_a_token_the_server_refuses_says_so(alice, provider_settings, oauth_server, oauth_user, dovecot_oauth):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    oauth_server.revoke_all(oauth_user.username)  # our clock says the token lasts; Dovecot's check says no

    with pytest.raises(imap.ImapAuthError, match=r"refused the sign-in token \(expired or revoked\): sign in again"):
        imap.ImapSession(server_config(account)).open()


def test_a_grant_without_the_mail_scope_is_refused_with_that_reason(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth
):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server, oauth_expires_at=timezone.now())
    oauth_server.scope = "openid email"  # the user unticked "read your mail" at the provider

    with pytest.raises(oauth.SignInAgain, match="did not grant access to your mail .*lack mail"):
        oauth.access_token(account)
    account.refresh_from_db()
    assert account.status == MailAccount.Status.NEEDS_ATTENTION


def test_provider_down_is_a_network_error_to_retry(alice, settings, oauth_server, oauth_user, dovecot_oauth):
    conf = oauth_server.provider_settings(dovecot_oauth.host, dovecot_oauth.port)
    conf["token_url"] = "https://localhost:9/token"  # nothing listens
    settings.MAILHELPER_OAUTH_PROVIDERS = {"generic": conf}
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server, oauth_expires_at=timezone.now())

    run = run_sync(account)

    assert run.status == "failed" and run.error_kind == "network"
    assert "could not be reached" in run.error
    account.refresh_from_db()
    assert account.status != MailAccount.Status.NEEDS_ATTENTION


def test_smtp_sends_with_xoauth2(alice, provider_settings, oauth_server, oauth_user, dovecot_oauth, smtp_sink_oauth):
    account = oauth_account(
        alice.user,
        oauth_user,
        dovecot_oauth,
        oauth_server,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink_oauth.port,
        smtp_security="plain",
    )
    refused = sending.deliver(
        sending.smtp_config(account), oauth_user.username, ["bob@example.test"], b"Subject: hi\r\n\r\nhello\r\n"
    )
    assert refused == {}
    [message] = smtp_sink_oauth.wait_for_messages(1)
    assert message.auth_login == oauth_user.username and message.rcpt_tos == ["bob@example.test"]


def test_smtp_refusal_of_a_revoked_token(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth, smtp_sink_oauth
):
    account = oauth_account(
        alice.user,
        oauth_user,
        dovecot_oauth,
        oauth_server,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink_oauth.port,
        smtp_security="plain",
    )
    oauth_server.revoke_all(oauth_user.username)
    with pytest.raises(sending.SendError, match="refused the sign-in token") as caught:
        sending.deliver(sending.smtp_config(account), oauth_user.username, ["bob@example.test"], b"Subject: x\r\n\r\nx")
    assert caught.value.kind == "auth" and smtp_sink_oauth.messages == []


def test_no_token_in_reprs(alice, provider_settings, oauth_server, oauth_user, dovecot_oauth):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    config = server_config(account)
    tokens = oauth.Tokens("at-secret", "rt-secret", None)
    provider = oauth.get_provider("generic")
    assert account.oauth_access_token not in repr(config)
    assert "secret" not in repr(tokens) and provider.client_secret not in repr(provider)


def test_providers_without_client_id_are_not_offered(settings):
    settings.MAILHELPER_OAUTH_PROVIDERS = {
        "google": {"client_id": "", "client_secret": ""},
        "microsoft": {"client_id": "ms-id", "client_secret": "s", "tenant": "organizations"},
    }
    [microsoft] = oauth.providers()
    assert microsoft.name == "Microsoft"
    assert microsoft.token_url == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    assert microsoft.mail_scopes == {
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
    }
    assert microsoft.imap_host == "outlook.office365.com"


def test_removing_the_account_on_its_page_revokes_the_grant_after_the_commit(
    alice, alice_client, provider_settings, oauth_server, oauth_user, dovecot_oauth, django_capture_on_commit_callbacks
):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    refresh = account.oauth_refresh_token
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice_client.post(reverse("mail:account-delete", args=[account.pk]))
    assert response.status_code == 302 and not MailAccount.objects.filter(pk=account.pk).exists()
    assert not oauth_server.revoked(refresh)  # nothing is sent before the deletion is committed
    for callback in callbacks:
        callback()
    assert oauth_server.revoked(refresh)


def test_deleting_the_user_revokes_every_oauth_account_and_logs_no_token(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth, django_capture_on_commit_callbacks, caplog
):
    first = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server, name="One")
    second = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server, name="Two")
    tokens = [first.oauth_refresh_token, second.oauth_refresh_token, first.oauth_access_token]
    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        delete_user(alice.user)
    assert oauth_server.revoked(tokens[0]) and oauth_server.revoked(tokens[1])
    assert "revoked: True" in caplog.text
    assert not any(token in caplog.text for token in tokens)


def test_a_deletion_that_rolls_back_revokes_nothing(
    alice, provider_settings, oauth_server, oauth_user, dovecot_oauth, django_capture_on_commit_callbacks
):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        MailAccount.objects.get(pk=account.pk).delete()
        raise RuntimeError("rolled back")
    assert MailAccount.objects.filter(pk=account.pk).exists()
    assert not oauth_server.revoked(account.oauth_refresh_token)


def test_an_unreachable_provider_does_not_stop_the_removal(
    alice, alice_client, settings, oauth_server, oauth_user, dovecot_oauth, django_capture_on_commit_callbacks, caplog
):
    provider = oauth_server.provider_settings(dovecot_oauth.host, dovecot_oauth.port, "127.0.0.1", 1)
    settings.MAILHELPER_OAUTH_PROVIDERS = {"generic": {**provider, "revoke_url": "https://127.0.0.1:1/revoke"}}
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("mail:account-delete", args=[account.pk]))
    assert response.status_code == 302 and not MailAccount.objects.filter(pk=account.pk).exists()
    assert "revoked: False" in caplog.text
    assert not oauth_server.revoked(account.oauth_refresh_token)


def test_a_password_account_is_removed_without_asking_any_provider(
    alice, alice_client, mail_account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        alice_client.post(reverse("mail:account-delete", args=[mail_account.pk]))
    assert not MailAccount.objects.filter(pk=mail_account.pk).exists()
    assert callbacks == []


def test_the_confirmation_says_the_consent_is_withdrawn_only_where_it_will_be(
    alice, alice_client, provider_settings, oauth_server, oauth_user, dovecot_oauth, mail_account
):
    account = oauth_account(alice.user, oauth_user, dovecot_oauth, oauth_server)
    page = alice_client.get(reverse("mail:account-delete", args=[account.pk])).content.decode()
    assert "access to the mailbox at Example Mail is withdrawn too" in page
    password_page = alice_client.get(reverse("mail:account-delete", args=[mail_account.pk])).content.decode()
    assert "withdrawn" not in password_page
