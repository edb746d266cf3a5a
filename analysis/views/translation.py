"""Translate a message on demand, and the automatic translation setting."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_POST

from mail.views.messages import message_of

from .. import language as languages
from .. import translation


def reader_language(request: HttpRequest) -> str:
    """The language the user reads the interface in ("en" of "en-us")."""
    return (get_language() or "en")[:2].lower()


@require_POST
def translate_message(request: HttpRequest, message_id) -> HttpResponse:
    message = message_of(request, message_id, defer=("raw", "search_ids"))
    try:
        translation.translate(message, reader_language(request))
    except translation.TranslationUnavailable as exc:
        messages.error(request, str(exc))
    return redirect(reverse("mail:message", args=[message.pk]) + "#translation")


@require_POST
def translation_settings(request: HttpRequest) -> HttpResponse:
    prefs = translation.settings_for(request.user.pk)
    chosen = request.POST.get("language", "")
    prefs.language = chosen if chosen in languages.LANGUAGE_NAMES else reader_language(request)
    prefs.auto_translate = request.POST.get("auto_translate") == "1"
    prefs.save()
    if prefs.auto_translate:
        messages.success(
            request,
            gettext("New mail in other languages will be translated into %(language)s.")
            % {"language": languages.language_name(prefs.language)},
        )
    else:
        messages.success(request, gettext("Automatic translation is off."))
    return redirect("mail:analysis-settings")
