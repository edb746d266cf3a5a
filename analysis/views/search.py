"""Search page: keywords (blind index) or "messages about ..." (ranked by topic similarity)."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from mail import queries
from mail.paging import CappedPaginator
from tags.models import Tag

from .. import similarity
from ..rows import message_rows, result_rows_html
from ..search import SearchFilters, search
from .similar import learn_topics_if_needed

PAGE_SIZE = 50
COUNT_CAP = 1000


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def search_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    get = request.GET
    accounts = list(queries.accounts_of(request.user).only("id", "owner_id", "name"))
    account_ids = {str(a.pk) for a in accounts}
    filters = SearchFilters(
        account_id=get.get("account") if get.get("account") in account_ids else None,
        folder_id=int(get["folder"]) if get.get("folder", "").isdigit() else None,
        since=_date(get.get("since", "")),
        until=_date(get.get("until", "")),
        tag_id=int(get["tag"]) if get.get("tag", "").isdigit() else None,
        unread=get.get("unread") == "1",
        has_attachment=get.get("attachment") == "1",
    )
    mode = "about" if get.get("mode") == "about" else "words"
    ranking = None
    if mode == "about":
        results = None
        ranking = similarity.about(request.user, query, filters) if query else None
        if ranking is not None:
            learn_topics_if_needed(request.user, ranking)
        page = similarity.messages_page(request.user, ranking, get.get("page"), PAGE_SIZE) if ranking else None
    else:
        results = search(request.user, query, filters) if query else None
        paginator = CappedPaginator(results, PAGE_SIZE, cap=COUNT_CAP) if results is not None else None
        page = paginator.get_page(get.get("page")) if paginator is not None else None
    rows = message_rows(page.object_list) if page is not None else []
    context = {
        "query": query,
        "mode": mode,
        "ranking": ranking,
        "filters": filters,
        "page": page,
        "rows": rows,
        "rows_html": result_rows_html(rows),
        "accounts": accounts,
        "folders": queries.folders_of(request.user)
        .filter(exists_on_server=True)
        .select_related("account")
        .only("id", "name", "delimiter", "account_id", "account__name"),
        "tags": Tag.objects.filter(owner=request.user),
        "no_words": bool(query) and mode == "words" and results is None,
        "filter_query": "&".join(f"{k}={v}" for k, v in get.items() if k != "page"),
    }
    return render(request, "mail/search.html", context)
