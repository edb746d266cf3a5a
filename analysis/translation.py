"""Translation of a message into the user's language by their language model.

The same path as analysis: the text goes through the masking of analysis/providers (addresses,
numbers, names replaced before it leaves), the translation comes back unmasked and is stored
encrypted. Without a provider there is no translation (the page says what to set up): no
built-in fallback could translate. Automatic translation (opt-in) is the post-analysis stage
`queue_translations` in stages.py, which queues the `mail.translate_messages` task: the model is
slow, so it never runs inside the stage's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mail.models import Message

from . import language as languages
from .models import MessageAnalysis, MessageTranslation, TranslationSettings
from .pipeline import message_input
from .provider_settings import config_for, enabled_for
from .providers import ProviderError, get_provider

log = logging.getLogger(__name__)

NO_PROVIDER = _(
    "Translating needs a language model: set one up under Analysis settings (it is used with the same "
    "masking as for analysis)."
)


class TranslationUnavailable(Exception):
    """No translation could be made; the text is for the user (never content)."""


def settings_for(owner_id: int) -> TranslationSettings:
    return TranslationSettings.objects.filter(owner_id=owner_id).first() or TranslationSettings(owner_id=owner_id)


def translation_of(message: Message, language: str) -> MessageTranslation | None:
    return MessageTranslation.objects.filter(owner_id=message.owner_id, message=message, language=language).first()


def is_foreign(message_language: str, language: str) -> bool:
    """Worth translating: its language is known and is not the one the user reads."""
    return bool(message_language) and message_language != language


def translate(message: Message, language: str) -> MessageTranslation:
    """The message's translation into `language`, made now unless it exists."""
    existing = translation_of(message, language)
    if existing is not None:
        return existing
    row = enabled_for(message.owner_id, "analysis")
    if row is None:
        raise TranslationUnavailable(str(NO_PROVIDER))
    provider = get_provider(config_for(row))
    try:
        subject, body = provider.translate(message_input(message), languages.language_name(language) or language)
    except ProviderError as exc:
        raise TranslationUnavailable(gettext("The translation failed: %(error)s") % {"error": exc}) from None
    translation = MessageTranslation(
        owner_id=message.owner_id, message=message, language=language, subject=subject, body=body,
        method=provider.method[:120],
    )  # fmt: skip
    try:
        with transaction.atomic():
            translation.save()
    except IntegrityError:  # made meanwhile by the automatic translation: keep that one
        return translation_of(message, language) or translation
    return translation


def pending_translations(owner_id: int, messages: Iterable[Message]) -> list:
    """Ids of the messages the user's automatic translation should translate (foreign, not done yet)."""
    prefs = settings_for(owner_id)
    if not prefs.auto_translate or enabled_for(owner_id, "analysis") is None:
        return []
    ids = [m.pk for m in messages]
    foreign = (
        MessageAnalysis.objects.filter(owner_id=owner_id, message_id__in=ids)
        .exclude(language="")
        .exclude(language=prefs.language)
        .values_list("message_id", flat=True)
    )
    done = set(
        MessageTranslation.objects.filter(message_id__in=ids, language=prefs.language).values_list(
            "message_id", flat=True
        )
    )
    return [pk for pk in foreign if pk not in done]


def translate_pending(owner_id: int, message_ids: list) -> tuple[int, int]:
    """The automatic translation of the given messages, one at a time. Returns (made, failed)."""
    prefs = settings_for(owner_id)
    made = failed = 0
    for message in Message.objects.filter(owner_id=owner_id, pk__in=message_ids).defer("raw"):
        try:
            translate(message, prefs.language)
            made += 1
        except TranslationUnavailable:
            failed += 1  # the button on the message page still offers it
            log.info("automatic translation of message %s not made", message.pk)
    return made, failed
