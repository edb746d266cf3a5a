"""Legacy OAuth accounts (auth_type "oauth", oauth_provider, the sealed tokens) become working OAuth2 accounts.

The legacy file is built as the legacy application wrote it (values sealed with the legacy key); after
the first-login conversion a still-valid refresh token keeps working: the first sync refreshes the
lapsed access token at the (fake) provider and signs in to the OAuth Dovecot with it.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import User
from legacy import conversion
from legacy.models import LegacySealedValue
from mail.models import MailAccount
from tests.plugins.mail import make_raw, run_sync

from .legacy_db import LegacyDB

pytestmark = pytest.mark.django_db


def run_import(path) -> str:
    out = io.StringIO()
    call_command("import_legacy", "--sqlite", str(path), stdout=out, stderr=io.StringIO(), no_color=True)
    return out.getvalue()


def legacy_oauth_account(db: LegacyDB, owner, dovecot, username: str, name: str, **tokens) -> None:
    db.insert(
        "mail_accounts",
        user_id=owner.id,
        name=name,
        auth_type="oauth",
        oauth_provider="gmail",
        oauth_expires_at="2024-05-01 10:00:00",  # long lapsed
        encrypted_imap_server=db.enc(owner, dovecot.host),
        imap_port=dovecot.port,
        imap_encryption="none",
        encrypted_imap_username=db.enc(owner, username),
        enabled=1,
        **{column: db.enc(owner, value) for column, value in tokens.items()},
    )


def test_an_imported_oauth_account_keeps_working_with_its_refresh_token(
    tmp_path, settings, oauth_server, oauth_user, dovecot_oauth
):
    settings.MAILHELPER_OAUTH_PROVIDERS = {
        "google": {**oauth_server.provider_settings(dovecot_oauth.host, dovecot_oauth.port), "name": "Google"}
    }
    old_access, refresh = oauth_server.issue(oauth_user.username)
    oauth_server.expire_access_tokens()
    db = LegacyDB(tmp_path / "legacy.sqlite")
    dora = db.add_user("dora_legacy", "dora legacy password 4")
    legacy_oauth_account(
        db, dora, dovecot_oauth, oauth_user.username, "Gmail",
        encrypted_oauth_token=old_access, encrypted_oauth_refresh_token=refresh,
    )  # fmt: skip
    legacy_oauth_account(db, dora, dovecot_oauth, "lapsed@example.test", "Lapsed", encrypted_oauth_token="at-old")
    db.close()

    output = run_import(db.path)
    assert "All checksums match." in output, output
    user = User.objects.get(username="dora_legacy")
    gmail = MailAccount.objects.get(owner=user, name="Gmail")
    assert gmail.uses_oauth and gmail.oauth_provider == "google" and not gmail.enabled
    assert LegacySealedValue.objects.filter(target="mail.mailaccount", target_pk=str(gmail.pk)).count() == 4

    assert conversion.on_password_verified(user, dora.password)
    assert conversion.convert_user(user.pk).failed == 0
    gmail.refresh_from_db()
    assert (gmail.oauth_access_token, gmail.oauth_refresh_token) == (old_access, refresh)
    assert gmail.enabled and gmail.status == MailAccount.Status.NEW
    lapsed = MailAccount.objects.get(owner=user, name="Lapsed")
    assert lapsed.status == MailAccount.Status.NEEDS_ATTENTION and "sign in again" in lapsed.status_message
    assert "All checksums match." in run_import(db.path)  # a rerun after conversion: still accounted for

    dovecot_oauth.deliver(oauth_user, make_raw(1, subject="After the move"))
    run = run_sync(gmail)
    assert run.status == "success", run.error
    assert [m.subject for m in gmail.messages.all()] == ["After the move"]
    gmail.refresh_from_db()
    assert gmail.oauth_access_token != old_access  # refreshed with the imported refresh token
