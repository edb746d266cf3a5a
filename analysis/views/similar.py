"""The "Similar messages" block of the message page (loaded by htmx after the page itself)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from mail import queries

from .. import similarity, tasks
from ..rows import message_rows, result_rows_html


def learn_topics_if_needed(user, ranking: similarity.Ranking) -> None:
    """Enough mail but no topics yet (imported mail, a lost task): queue the fit once (user id only)."""
    if ranking.status == similarity.Status.LEARNING and similarity.claim_fit(user.pk):
        tasks.fit_topics.delay(user.pk)


def similar_messages(request: HttpRequest, message_id) -> HttpResponse:
    message = get_object_or_404(queries.messages_of(request.user).only("id", "owner_id", "subject"), pk=message_id)
    ranking = similarity.similar_to(request.user, message)
    learn_topics_if_needed(request.user, ranking)
    results = message_rows(similarity.ranked_messages(request.user, ranking)) if ranking.ids else []
    context = {"message": message, "ranking": ranking, "results": results, "results_html": result_rows_html(results)}
    # Without htmx (a link opened directly) the block comes as a page of its own.
    template = "mail/_similar.html" if request.headers.get("HX-Request") else "mail/similar_page.html"
    return render(request, template, context)
