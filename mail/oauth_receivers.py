"""An account removed here withdraws its OAuth2 consent at the provider (RFC 7009), however it goes:
the account page, the admin, or the deletion of its user.

The token is read before the delete (afterwards the owner's keyring rows may be gone in the same
cascade) and sent after the commit, so a deletion that rolls back leaves a working account. Best
effort: a provider that cannot be reached, or has no revocation endpoint (Microsoft), leaves the
consent to the user's own account page there; the log says which, without the token.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from accounts.crypto import DecryptionError
from accounts.keyring import KeyringLocked

from . import oauth
from .models import MailAccount

log = logging.getLogger(__name__)


@receiver(pre_delete, sender=MailAccount)
def _revoke_consent_after_delete(sender, instance: MailAccount, **kwargs) -> None:
    if instance.auth_method != MailAccount.AuthMethod.OAUTH2:
        return
    provider = oauth.revoking_provider(instance)
    if provider is None:
        log.info("account %s removed: provider %r revokes no tokens", instance.pk, instance.oauth_provider)
        return
    try:
        # The refresh token: revoking it ends the grant, and with it every access token it produced.
        token = instance.oauth_refresh_token or instance.oauth_access_token
    except (KeyringLocked, DecryptionError) as exc:
        log.warning(
            "account %s removed: its token could not be read to revoke it (%s)", instance.pk, type(exc).__name__
        )
        return
    account_id = instance.pk

    def revoke() -> None:
        confirmed = oauth.revoke(provider, token)
        log.info("account %s removed: consent at %s revoked: %s", account_id, provider.name, confirmed)

    transaction.on_commit(revoke)
