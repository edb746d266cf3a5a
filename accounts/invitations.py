"""Who may create an account: the registration mode and the operator's invitations.

Contract:
- `MAILHELPER_REGISTRATION` is the mode: "open" (anyone registers, as before), "invite" (the
  default of a new installation: only people the operator invited), "closed" (no sign-up page; the
  operator creates users in the admin). The registration view asks `mode()` at request time, so a
  changed setting needs a restart of the web processes only.
- An invitation is for one e-mail address (lower-cased) and valid until `expires_at`
  (MAILHELPER_INVITATION_DAYS, 14 by default, or the operator's `days`). Two kinds:
  - a link (`create(email)`): a random 256-bit token; the row keeps only its SHA-256, and the
    raw token exists once, in the link `create` returns (printed by `manage.py invite`, shown once in
    the admin). The registration page opened with `?invite=<token>` shows the form with the invited
    address fixed.
  - the address alone (`create(email, with_link=False)`): registering with that
    address is allowed (the page's "invited by address" form). Weaker than a link, since Mailhelper
    does not verify e-mail addresses: whoever types the address first gets the account. A link
    invitation is never redeemed by typing its address: the token is the point of it.
- Redeeming is one conditional UPDATE (`redeem`), in the registration's transaction and before the
  account is made: two sign-ups holding the same invitation both try it, PostgreSQL lets one through
  and makes the other wait for its commit and then find `used_at` set, so it updates nothing and that
  registration stops (InvitationUsed) before it writes anything. Exactly one account per invitation,
  however many requests race.
- The redemption is written to the new user's audit log (`invitation_redeemed`).
- Nothing to import from the legacy application: its schema (../shared/legacy/SCHEMA.md) has no
  invited addresses.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import audit
from .models import Invitation, User

OPEN, INVITE, CLOSED = "open", "invite", "closed"
TOKEN_BYTES = 32


class InvitationUsed(Exception):
    """The invitation was redeemed (or ran out) between the form's check and the registration."""


def mode() -> str:
    return settings.MAILHELPER_REGISTRATION


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """The address as invitations store it; ValidationError for something that is not an address."""
    email = (email or "").strip().lower()
    validate_email(email)
    return email


def link(token: str) -> str:
    """The absolute registration link that carries `token` (MAILHELPER_BASE_URL, like the digest's links)."""
    query = urlencode({"invite": token})
    return f"{settings.MAILHELPER_BASE_URL.rstrip('/')}{reverse('accounts:register')}?{query}"


def prepare(invitation: Invitation, *, days: int | None = None, with_link: bool = True) -> str | None:
    """Fill in an unsaved invitation's address, expiry and token hash; return the raw token (or None).

    Raises ValidationError for an invalid address, one that already has an account, or days below 1.
    """
    invitation.email = normalise_email(invitation.email)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ValidationError(_("An account with this email address already exists."))
    days = settings.MAILHELPER_INVITATION_DAYS if days is None else days
    if days < 1:
        raise ValidationError(_("An invitation must be valid for at least one day."))
    token = secrets.token_urlsafe(TOKEN_BYTES) if with_link else None
    invitation.token_hash = hash_token(token) if token else None
    invitation.expires_at = timezone.now() + timedelta(days=days)
    return token


def create(
    email: str, *, invited_by: User | None = None, days: int | None = None, with_link: bool = True
) -> tuple[Invitation, str | None]:
    """A new, saved invitation and its raw token (None for an address-only invitation)."""
    invitation = Invitation(email=email, invited_by=invited_by)
    token = prepare(invitation, days=days, with_link=with_link)
    invitation.save()
    return invitation, token


def by_token(token: str) -> Invitation | None:
    """The link invitation the token belongs to, whatever its state (None for a forged token)."""
    if not token:
        return None
    return Invitation.objects.filter(token_hash=hash_token(token)).first()


def for_address(email: str, now: datetime | None = None) -> Invitation | None:
    """A valid address-only invitation of `email` (the newest), or None."""
    try:
        email = normalise_email(email)
    except ValidationError:
        return None
    return (
        Invitation.objects.filter(
            email=email, token_hash__isnull=True, used_at__isnull=True, expires_at__gt=now or timezone.now()
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def redeem(invitation: Invitation, make_user: Callable[[], User], request_meta: dict | None = None) -> User:
    """Claim the invitation, make the account with `make_user()`, and record who used it.

    Raises InvitationUsed, before `make_user` runs, when the invitation is used or expired. Call it
    inside the registration's transaction: an error in `make_user` rolls the claim back too.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True, expires_at__gt=now).update(
            used_at=now
        )
        if claimed != 1:
            # Another registration got there first: PostgreSQL made this UPDATE wait for that one's
            # commit and then found used_at set. (Or the invitation expired since the form was checked.)
            raise InvitationUsed
        user = make_user()
        Invitation.objects.filter(pk=invitation.pk).update(used_by=user)
        how = "link" if invitation.is_link else "address"
        audit.record(user, audit.Kind.INVITATION_REDEEMED, request_meta, how=how)
    invitation.used_at, invitation.used_by = now, user
    return user


def withdraw(queryset) -> int:
    """End the unused invitations of `queryset` now (the admin action); how many."""
    return queryset.filter(used_at__isnull=True, expires_at__gt=timezone.now()).update(expires_at=timezone.now())
