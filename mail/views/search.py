"""Keyword search page."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tags.models import Tag

from .. import queries
from ..paging import CappedPaginator
from ..search import SearchFilters, search

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
    accounts = list(queries.accounts_of(request.user))
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
    results = search(request.user, query, filters) if query else None
    page = CappedPaginator(results, PAGE_SIZE, cap=COUNT_CAP).get_page(get.get("page")) if results is not None else None
    context = {
        "query": query,
        "filters": filters,
        "page": page,
        "accounts": accounts,
        "folders": queries.folders_of(request.user).filter(exists_on_server=True).select_related("account"),
        "tags": Tag.objects.filter(owner=request.user),
        "no_words": bool(query) and results is None,
        "filter_query": "&".join(f"{k}={v}" for k, v in get.items() if k != "page"),
    }
    return render(request, "mail/search.html", context)
