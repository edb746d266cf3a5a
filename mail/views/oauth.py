"""'Sign in with Google / Microsoft / ...': the start of the consent and the provider's redirect back.

The `state` and the PKCE verifier live in the user's session, keyed by the state, for ten minutes and
for one use: a callback whose state this session did not start (a forged or replayed link, another
browser) is refused before any code is exchanged.
"""

from __future__ import annotations

import time

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import audit
from accounts.views.common import audit_meta

from .. import oauth, oauth_accounts, queries, sync, tasks
from ..models import MailAccount, SyncRun

_PENDING = "mail_oauth_pending"
_PENDING_SECONDS = 600
_PENDING_MAX = 5  # consents started in other tabs and never finished


@require_POST
def oauth_start(request: HttpRequest) -> HttpResponse:
    """Send the browser to the `provider`; `account` (optional) is the account to sign in again."""
    account_id, hint = request.POST.get("account", ""), request.POST.get("email", "").strip()
    account = None
    if account_id:
        try:
            account = (
                queries.accounts_of(request.user).filter(auth_method=MailAccount.AuthMethod.OAUTH2).get(pk=account_id)
            )
        except (MailAccount.DoesNotExist, ValidationError):
            raise Http404 from None
        hint = account.imap_username
    provider = oauth.get_provider(account.oauth_provider if account else request.POST.get("provider", ""))
    if provider is None:
        messages.error(request, _("Sign-in with this provider is not set up on this server."))
        return redirect("mail:account-add")
    if hint and account is None:
        try:
            validate_email(hint)
        except ValidationError:
            messages.error(request, _("Enter a valid email address, or leave it empty."))
            return redirect("mail:account-add")
    authorization = oauth.authorization(provider, login_hint=hint)
    now = time.time()
    pending = {s: p for s, p in request.session.get(_PENDING, {}).items() if now - p["at"] < _PENDING_SECONDS}
    for state in sorted(pending, key=lambda s: pending[s]["at"])[: max(0, len(pending) - _PENDING_MAX + 1)]:
        del pending[state]
    pending[authorization.state] = {
        "provider": provider.key,
        "verifier": authorization.verifier,
        "account": account_id,
        "email": hint,
        "at": now,
    }
    request.session[_PENDING] = pending
    return redirect(authorization.url)


@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """The provider sends the browser back here with a code (or an error) and the state."""
    pending = request.session.get(_PENDING, {})
    started = pending.pop(request.GET.get("state", ""), None)
    request.session[_PENDING] = pending  # single use, whatever happens next
    if started is None or time.time() - started["at"] > _PENDING_SECONDS:
        messages.error(request, _("This sign-in was not started here or took too long: please start it again."))
        return redirect("mail:accounts")
    provider = oauth.get_provider(started["provider"])
    if provider is None:
        messages.error(request, _("Sign-in with this provider is not set up on this server."))
        return redirect("mail:accounts")
    if "error" in request.GET or not request.GET.get("code"):
        if request.GET.get("error") == "access_denied":
            messages.warning(
                request,
                _("You did not allow access at %(provider)s: nothing was changed.") % {"provider": provider.name},
            )
        else:
            messages.error(
                request, _("%(provider)s did not complete the sign-in: please try again.") % {"provider": provider.name}
            )
        return redirect("mail:accounts")
    try:
        tokens = oauth.exchange_code(provider, request.GET["code"], started["verifier"])
    except oauth.OAuthError as exc:
        messages.error(request, str(exc))
        return redirect("mail:accounts")
    if started["account"]:
        return _signed_in_again(request, started["account"], provider, tokens)
    address = tokens.email or started["email"]
    if not address:
        messages.error(
            request,
            _("%(provider)s did not tell which address you signed in with: enter it and start again.")
            % {"provider": provider.name},
        )
        return redirect("mail:account-add")
    account = oauth_accounts.create_account(request.user, provider, tokens, address)
    meta = audit_meta(request)
    audit.record(request.user, audit.Kind.OAUTH_GRANTED, meta, account=account.name, provider=provider.key)
    audit.record(request.user, audit.Kind.MAIL_ACCOUNT_ADDED, meta, account=account.name)
    messages.success(
        request,
        _("Signed in with %(provider)s as %(address)s. Choose the folders to sync.")
        % {"provider": provider.name, "address": address},
    )
    return redirect("mail:account-folders", account_id=account.pk)


def _signed_in_again(request: HttpRequest, account_id: str, provider: oauth.Provider, tokens: oauth.Tokens):
    account = get_object_or_404(queries.accounts_of(request.user), pk=account_id)
    try:
        oauth_accounts.sign_in_again(account, provider, tokens)
    except oauth_accounts.WrongMailbox as exc:
        messages.error(request, str(exc))
        return redirect("mail:accounts")
    audit.record(
        request.user, audit.Kind.OAUTH_GRANTED, audit_meta(request), account=account.name, provider=provider.key
    )
    run, created = sync.queue_run(account, SyncRun.Trigger.MANUAL)
    if created:
        transaction.on_commit(
            lambda: tasks.sync_account.delay(account_id=str(account.pk), run_id=run.pk, trigger=run.trigger)
        )
    messages.success(request, _("Signed in again: “%(name)s” syncs now.") % {"name": account.name})
    return redirect("mail:sync-run", run_id=run.pk)
