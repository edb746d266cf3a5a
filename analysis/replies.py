"""The user's language model as mail's reply writer (registered in analysis/receivers.py).

Drafts are written while the user waits on the page, so the provider's timeout is capped below the
web server's request timeout: a slow model ends in the template (with the reason shown), not in a
killed request. Personal data is masked by the provider layer like for analysis (providers/base.py).
"""

from __future__ import annotations

import logging

from django.conf import settings

from mail.models import Message, ReplySettings
from mail.replies import ReplyBrief, WriterFailed, Written

from .pipeline import message_input
from .provider_settings import config_for, enabled_for
from .providers import ProviderError, get_provider

log = logging.getLogger(__name__)


def write_with_model(message: Message, brief: ReplyBrief) -> Written | None:
    """None when the user has no provider enabled for replies; WriterFailed when it did not answer."""
    row = enabled_for(message.owner_id, "replies")
    if row is None:
        return None
    config = config_for(row, timeout=settings.MAILHELPER_REPLY_LLM_TIMEOUT)
    msg = message_input(message)
    msg.from_name = brief.addressee
    msg.reply_to = brief.reply_to
    informal = brief.address_form == ReplySettings.AddressForm.INFORMAL
    try:
        provider = get_provider(config)
        text = provider.draft_reply(
            msg,
            style=brief.style,
            greeting=brief.greeting,
            closing=brief.closing,
            address_form="informal: first names" if informal else "formal",
            instructions=brief.instructions,
            signature=brief.signature,
            language="",
        )
    except ProviderError as exc:
        raise WriterFailed(f"{row.get_kind_display()}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any provider trouble degrades to the template
        log.warning("reply draft by provider failed for user %s (%s)", message.owner_id, type(exc).__name__)
        raise WriterFailed(f"{row.get_kind_display()}: unexpected error ({type(exc).__name__})") from None
    return Written(text, provider.method)
