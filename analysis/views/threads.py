"""Conversation view: a message and everything in its thread, across folders (Sent included)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from mail import queries

from .. import queries as inbox_queries


def conversation(request: HttpRequest, message_id) -> HttpResponse:
    message = get_object_or_404(queries.messages_of(request.user), pk=message_id)
    thread = list(inbox_queries.thread_of(request.user, message))
    newest = thread[-1] if thread else message
    context = {
        "message": message,
        "thread": thread,
        "analysis": getattr(newest, "analysis", None),
        "newest": newest,
    }
    return render(request, "mail/conversation.html", context)
