"""Mail for the analysis tests: a newsletter and an urgent request (each with a %d for its number),
delivered to the real Dovecot and synced."""

from __future__ import annotations

from analysis.models import ProviderSettings
from tests.plugins.mail import create_account, run_sync

NEWSLETTER = (
    b"From: Weekly News <news@letters.example>\r\nTo: me@example.test\r\nSubject: Your weekly digest\r\n"
    b"List-Id: <weekly.letters.example>\r\nList-Unsubscribe: <mailto:unsub@letters.example>\r\n"
    b"Precedence: bulk\r\nMessage-ID: <nl-%d@letters.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
    b"This week: ten articles you might like. Read more on our website.\r\n"
)
URGENT = (
    b"From: Boss <boss@work.example>\r\nTo: me@example.test\r\nSubject: URGENT: contract needed today\r\n"
    b"Message-ID: <urgent-%d@work.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
    b"Hi,\r\n\r\nplease send me the signed contract today by 3pm, the client is waiting. Can you do that?\r\n"
)


def synced(dovecot, imap_user, owner, raws):
    account = create_account(owner, imap_user, dovecot)
    for raw in raws:
        dovecot.deliver(imap_user, raw)
    run_sync(account)
    return account


def configure_provider(owner, fake_llm, kind: str = "openai", **fields) -> ProviderSettings:
    """An enabled provider of `kind` pointed at the loopback fake language model."""
    return ProviderSettings.objects.create(
        owner=owner,
        enabled=True,
        kind=kind,
        base_url=fake_llm.base_url,
        model="test-model",
        api_key="sk-test-key-0123456789",
        timeout_seconds=fields.pop("timeout_seconds", 5),
        **fields,
    )
