"""Answering an invitation (the card itself is part of the message page)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from .models import Event
from .replies import AnswerError, answer


@require_POST
def answer_event(request: HttpRequest, event_id) -> HttpResponse:
    choice = request.POST.get("answer", "")
    message_id = Event.objects.filter(pk=event_id, owner=request.user).values_list("message_id", flat=True).first()
    if message_id is None:
        raise Http404("No such event.")
    try:
        answer(event_id, request.user.pk, choice)
        messages.success(
            request,
            gettext("%(answer)s: your answer was sent to the organiser.") % {"answer": Event.Answer(choice).label},
        )
    except AnswerError as exc:
        messages.error(request, str(exc))
    return redirect("mail:message", message_id)
