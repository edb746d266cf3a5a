"""Pagination that does not count a whole mailbox on every page view."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    """Counts at most `cap` + 1 rows: an exact count of 100,000 messages costs more than the page
    itself, and "10,000+" tells the user enough."""

    def __init__(self, object_list, per_page, cap: int = 10_000, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap

    @cached_property
    def count(self) -> int:
        capped_count = getattr(self.object_list, "capped_count", None)
        if callable(capped_count):  # results that count their own way (analysis.search.SearchResults)
            return capped_count(self.cap)
        return self.object_list[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap
