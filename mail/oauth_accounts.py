"""Mail accounts made or renewed by an OAuth2 consent (the views in mail/views/oauth.py call these).

A new account takes the provider's servers and the address the provider named; it then goes through
the same folder choice as a password account. Signing in again renews the tokens of an existing
account, but only as the same mailbox: a consent given as another address is refused, or the account
would silently start syncing someone else's mail into this one's history.
"""

from __future__ import annotations

from django.db import transaction

from .models import MailAccount
from .oauth import Provider, Tokens, store_tokens


class WrongMailbox(Exception):
    """The consent was given for another address than the account's; `str(exc)` is for the user."""


def _free_name(owner, base: str) -> str:
    taken = {n.lower() for n in MailAccount.objects.filter(owner=owner).values_list("name", flat=True)}
    name, number = base[:100], 2
    while name.lower() in taken:
        suffix = f" ({number})"
        name, number = base[: 100 - len(suffix)] + suffix, number + 1
    return name


def create_account(owner, provider: Provider, tokens: Tokens, address: str) -> MailAccount:
    """A new IMAP account signing in with the tokens; `address` is the mailbox's (and its login)."""
    account = MailAccount(
        owner=owner,
        name=_free_name(owner, f"{provider.name} ({address})"),
        email_address=address,
        protocol=MailAccount.Protocol.IMAP,
        imap_host=provider.imap_host,
        imap_port=provider.imap_port,
        imap_security=provider.imap_security,
        imap_username=address,
        smtp_host=provider.smtp_host,
        smtp_port=provider.smtp_port,
        smtp_security=provider.smtp_security,
    )
    store_tokens(account, provider, tokens)
    account.save()
    return account


def sign_in_again(account: MailAccount, provider: Provider, tokens: Tokens) -> None:
    """New tokens for the account (a withdrawn or expired consent renewed); the account is usable again."""
    if tokens.email and tokens.email.lower() != account.imap_username.lower():
        raise WrongMailbox(
            f"You signed in as {tokens.email}, but this account is {account.imap_username}: "
            f"sign in again as {account.imap_username}."
        )
    with transaction.atomic():
        store_tokens(account, provider, tokens)
        if account.status == MailAccount.Status.NEEDS_ATTENTION:
            account.status, account.status_message = MailAccount.Status.NEW, ""
        account.save()
