"""Analysis's own stage of the post-analysis pipeline (analysis/post_analysis.py runs it).

A stage is a function (owner_id, messages) -> None that may run again for the same messages.
"""

from __future__ import annotations

from django.db import transaction

from mail.models import Message
from tags import keywords

from . import similarity, tasks, translation
from .models import MessageAnalysis


def learn_topics(owner_id: int, messages: list[Message]) -> None:
    """Learn the owner's topics once their mail makes it worthwhile (no projection yet, or the mail
    has doubled since the last fit). A small mailbox is fitted here, in the analysis task (well
    under a second); a big one by the `mail.fit_topics` task, queued once (user id only).

    Idempotent: a second call finds no fit needed, or a fit already claimed.
    """
    if not similarity.needs_fit(owner_id):
        return
    if similarity.fit_inline(owner_id):
        similarity.fit(owner_id)
    elif similarity.claim_fit(owner_id):
        tasks.fit_topics.delay(owner_id)


def show_category_keywords(owner_id: int, messages: list[Message]) -> None:
    """Write each message's category to the server as its "mh_" keyword, for users who opted in
    (tags/keywords.py decides the keyword and queues it). Idempotent: a keyword in place queues nothing."""
    if not messages or not keywords.enabled(owner_id):
        return
    categories = dict(MessageAnalysis.objects.filter(message__in=messages).values_list("message_id", "final_category"))
    for message in messages:
        if message.pk in categories:
            keywords.show_category(owner_id, message, categories[message.pk])


def queue_translations(owner_id: int, messages: list[Message]) -> None:
    """Queue the automatic translation of the user's foreign mail (when they turned it on): ids only,
    after the commit, so the model's slow answers never hold this transaction open."""
    ids = translation.pending_translations(owner_id, messages)
    if ids:
        transaction.on_commit(lambda: tasks.translate_messages.delay(owner_id, [str(pk) for pk in ids]))
