"""OAuth2 for mail accounts: "Sign in with Google / Microsoft / <the operator's provider>" and fresh tokens.

The consent is the authorization-code flow with PKCE (RFC 6749, RFC 7636); the views keep the state
and verifier in the user's session, single use. This module is the protocol: where to send the
browser, how to exchange the code and refresh the token, and what a mail login needs from it.

Tokens are secrets like passwords (encrypted fields of MailAccount under the owner's data key);
a task carries only the account's id, and the worker calls :func:`access_token` right before it
logs in: the stored token while it has more than a minute left, else a refresh. The refresh holds
the account's row lock, so a sync and a send that both find the token stale refresh it once (a
provider that rotates refresh tokens would refuse the second, older one).

A refused refresh (``invalid_grant``: consent withdrawn, password changed, token expired) cannot be
retried into success: :class:`SignInAgain`, and the account "needs attention: sign in again". A
network failure or a provider's 5xx is :class:`ProviderUnavailable`: the next sync tries again.
Messages are written for the user and never hold a token or the client secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NoReturn
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from core import outbound, stored_text
from core.stored_text import Text

from .connecting import tls_context
from .models import MailAccount

#: Scopes that identify the user rather than grant mail access: not required in the granted scope.
_IDENTITY_SCOPES = frozenset({"openid", "email", "profile", "offline_access"})
_REFRESH_MARGIN = timedelta(seconds=60)
_TIMEOUT = 15.0
_REVOKE_TIMEOUT = 5.0  # the revocation runs in the request that removed the account


class OAuthError(Exception):
    """Base class; ``str(exc)`` is for the user."""


class SignInAgain(OAuthError):
    """The provider refused the grant or its scope: only a new consent helps."""


class ProviderUnavailable(OAuthError):
    """The provider could not be reached or failed: worth retrying later."""


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    revoke_url: str = ""
    extra_params: tuple[tuple[str, str], ...] = ()
    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = "ssl"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"

    @property
    def mail_scopes(self) -> frozenset[str]:
        """What the granted scope must hold for IMAP and SMTP to work."""
        return frozenset(self.scopes) - _IDENTITY_SCOPES


#: What is fixed about the two big providers; the operator supplies client id and secret.
_KNOWN = {
    "google": {
        "name": "Google",
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "revoke_url": "https://oauth2.googleapis.com/revoke",
        "scopes": "openid email https://mail.google.com/",
        # Without these Google sends no refresh token (offline) or only on the very first consent.
        "extra_params": (("access_type", "offline"), ("prompt", "consent")),
        "imap_host": "imap.gmail.com",
        "smtp_host": "smtp.gmail.com",
    },
    "microsoft": {
        "name": "Microsoft",
        "authorize_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        "token_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "scopes": "openid email offline_access https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send",
        "imap_host": "outlook.office365.com",
        "smtp_host": "smtp.office365.com",
    },
}


def _provider(key: str, configured: dict) -> Provider:
    values = {**_KNOWN.get(key, {}), **{k: v for k, v in configured.items() if v not in ("", None)}}
    values = {"client_id": "", "client_secret": "", "authorize_url": "", "token_url": "", **values}
    tenant = values.pop("tenant", "common")
    for url in ("authorize_url", "token_url"):
        values[url] = values.get(url, "").replace("{tenant}", tenant)
    scopes = values.pop("scopes", "")
    return Provider(
        key=key,
        name=values.pop("name", "") or key.title(),
        scopes=tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes),
        extra_params=tuple(values.pop("extra_params", ())),
        **{k: v for k, v in values.items() if k in Provider.__dataclass_fields__},
    )


def providers() -> list[Provider]:
    """The providers users are offered: configured with a client id and both endpoints."""
    found = [_provider(key, conf) for key, conf in settings.MAILHELPER_OAUTH_PROVIDERS.items()]
    return [p for p in found if p.client_id and p.authorize_url and p.token_url]


def get_provider(key: str) -> Provider | None:
    return next((p for p in providers() if p.key == key), None)


def redirect_uri() -> str:
    """The one redirect URI to register with every provider (check_deploy prints it)."""
    return settings.MAILHELPER_BASE_URL.rstrip("/") + reverse("mail:oauth_callback")


# --------------------------------------------------------------------------------------------------
# The consent
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and what the callback must find again (kept in the session)."""

    url: str
    state: str
    verifier: str = field(repr=False)


def authorization(provider: Provider, login_hint: str = "") -> Authorization:
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri(),
        "scope": " ".join(provider.scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **dict(provider.extra_params),
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in provider.authorize_url else "?"
    return Authorization(f"{provider.authorize_url}{separator}{urlencode(params)}", state, verifier)


@dataclass(frozen=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    email: str = ""


def exchange_code(provider: Provider, code: str, verifier: str) -> Tokens:
    """The tokens for the code the callback received; raises SignInAgain or ProviderUnavailable."""
    answer = _token_request(
        provider,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(), "code_verifier": verifier},
    )
    return _tokens(provider, answer, previous_refresh="")


def refresh(provider: Provider, refresh_token: str) -> Tokens:
    answer = _token_request(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})
    return _tokens(provider, answer, previous_refresh=refresh_token)


def _client(timeout: float = _TIMEOUT) -> httpx.Client:
    return httpx.Client(
        transport=outbound.HTTPTransport(ssl_context=tls_context()),
        trust_env=False,
        timeout=timeout,
        follow_redirects=False,
    )


def _token_request(provider: Provider, form: dict[str, str]) -> dict:
    form = {**form, "client_id": provider.client_id, "client_secret": provider.client_secret}
    try:
        with outbound.quiet_http_logs(), _client() as client:
            response = client.post(provider.token_url, data=form, headers={"Accept": "application/json"})
    except outbound.PolicyRefused:
        raise ProviderUnavailable(
            Text(gettext_noop("%(provider)s: %(policy)s."), provider=provider.name, policy=Text(outbound.POLICY_TEXT))
        ) from None
    except httpx.HTTPError as exc:
        text = gettext_noop("%(provider)s could not be reached (%(error)s).")
        raise ProviderUnavailable(Text(text, provider=provider.name, error=type(exc).__name__)) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code >= 500 or not isinstance(answer, dict):
        text = gettext_noop("%(provider)s failed to answer (HTTP %(status)s).")
        raise ProviderUnavailable(Text(text, provider=provider.name, status=response.status_code))
    if response.status_code != 200 or "access_token" not in answer:
        error = str(answer.get("error", "")) or f"HTTP {response.status_code}"
        if error == "invalid_grant":
            text = gettext_noop("%(provider)s no longer accepts this sign-in (expired or withdrawn): sign in again.")
            raise SignInAgain(Text(text, provider=provider.name))
        if error in ("invalid_scope", "insufficient_scope"):
            text = gettext_noop("%(provider)s refused the mail permissions: sign in again and allow mail access.")
            raise SignInAgain(Text(text, provider=provider.name))
        if error in ("invalid_client", "unauthorized_client"):
            text = gettext_noop("%(provider)s refused this server's client id or secret: tell your administrator.")
            raise SignInAgain(Text(text, provider=provider.name))
        text = gettext_noop("%(provider)s refused the sign-in (%(error)s): sign in again.")
        raise SignInAgain(Text(text, provider=provider.name, error=error[:60]))
    return answer


def _tokens(provider: Provider, answer: dict, previous_refresh: str) -> Tokens:
    granted = set(str(answer.get("scope", "")).split())
    if granted and not provider.mail_scopes <= granted:  # no "scope" in the answer: as asked (RFC 6749 5.1)
        text = gettext_noop(
            "%(provider)s did not grant access to your mail (the scopes it granted lack %(scopes)s): "
            "sign in again and allow mail access."
        )
        raise SignInAgain(Text(text, provider=provider.name, scopes=", ".join(sorted(provider.mail_scopes - granted))))
    expires_in = answer.get("expires_in")
    try:
        expires_at = timezone.now() + timedelta(seconds=int(expires_in)) if expires_in is not None else None
    except (TypeError, ValueError):
        expires_at = None
    return Tokens(
        access_token=str(answer["access_token"]),
        # A refresh answer may omit the refresh token: the old one stays valid (RFC 6749 6).
        refresh_token=str(answer.get("refresh_token") or previous_refresh),
        expires_at=expires_at,
        email=_id_token_email(answer.get("id_token")),
    )


def _id_token_email(id_token: object) -> str:
    """The address in an ID token received straight from the token endpoint over TLS.

    OpenID Connect Core 3.1.3.7 lets a client that got the token this way rely on TLS instead of the
    signature; the address only pre-fills the account, and the mail server decides whose mail it is.
    """
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return ""
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return ""
    if not isinstance(claims, dict):
        return ""
    email = claims.get("email") or claims.get("preferred_username") or ""
    return email if isinstance(email, str) and "@" in email else ""


def revoking_provider(account: MailAccount) -> Provider | None:
    """The provider that withdraws this account's consent when it is removed here, if any."""
    if account.auth_method != MailAccount.AuthMethod.OAUTH2:
        return None
    provider = get_provider(account.oauth_provider)
    return provider if provider is not None and provider.revoke_url else None


def revoke(provider: Provider, token: str) -> bool:
    """Best effort (RFC 7009) when an account is removed; whether the provider confirmed it."""
    if not provider.revoke_url or not token:
        return False
    try:
        with outbound.quiet_http_logs(), _client(_REVOKE_TIMEOUT) as client:
            response = client.post(
                provider.revoke_url,
                data={"token": token, "client_id": provider.client_id, "client_secret": provider.client_secret},
            )
    except (httpx.HTTPError, outbound.PolicyRefused):
        return False
    return response.status_code == 200


# --------------------------------------------------------------------------------------------------
# The account's tokens
# --------------------------------------------------------------------------------------------------


def store_tokens(account: MailAccount, provider: Provider, tokens: Tokens) -> None:
    """Onto the (unsaved or saved) account: it signs in with OAuth2 from now on."""
    account.auth_method = MailAccount.AuthMethod.OAUTH2
    account.oauth_provider = provider.key
    account.oauth_access_token = tokens.access_token
    account.oauth_refresh_token = tokens.refresh_token
    account.oauth_expires_at = tokens.expires_at


def _fresh(account: MailAccount) -> bool:
    return bool(account.oauth_access_token) and (
        account.oauth_expires_at is None or account.oauth_expires_at - _REFRESH_MARGIN > timezone.now()
    )


def access_token(account: MailAccount) -> str:
    """A token the mail server will accept for the next minute at least; refreshed (and stored) if not.

    Raises SignInAgain (and marks the account) or ProviderUnavailable.
    """
    if _fresh(account):
        return account.oauth_access_token or ""
    provider = get_provider(account.oauth_provider)
    if provider is None:
        _needs_sign_in(account, "This server no longer offers sign-in with that provider: tell your administrator.")
    refused: Text | str = ""
    with transaction.atomic():
        current = MailAccount.objects.select_for_update().get(pk=account.pk)
        if not _fresh(current):  # else another worker refreshed it while this one waited for the lock
            if not current.oauth_refresh_token:
                refused = Text(
                    gettext_noop("The sign-in with %(provider)s has expired: sign in again."), provider=provider.name
                )
            else:
                try:
                    tokens = refresh(provider, current.oauth_refresh_token)
                except SignInAgain as exc:
                    refused = stored_text.message_of(exc)
                else:
                    store_tokens(current, provider, tokens)
                    current.save(update_fields=["oauth_access_token", "oauth_refresh_token", "oauth_expires_at"])
    if refused:
        _needs_sign_in(account, refused)
    account.oauth_access_token = current.oauth_access_token
    account.oauth_refresh_token = current.oauth_refresh_token
    account.oauth_expires_at = current.oauth_expires_at
    return account.oauth_access_token or ""


def _needs_sign_in(account: MailAccount, message: Text | str) -> NoReturn:
    """Record it on the account (a stored text: the account list shows it in the user's language), then raise."""
    stored = stored_text.dump(message, 300)
    MailAccount.objects.filter(pk=account.pk).update(status=MailAccount.Status.NEEDS_ATTENTION, status_message=stored)
    account.status, account.status_message = MailAccount.Status.NEEDS_ATTENTION, stored
    raise SignInAgain(message)
