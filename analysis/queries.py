"""The inbox's querysets: list rows with their scores and tags, the matrix, conversations.

Scoped to their owner through mail/queries.py. They are analysis's because a list row shows what
analysis concluded and which tags the message has (a query goes where everything it reads is visible).
"""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from mail import queries
from mail.models import Folder, MailAccount, Message
from tags.models import TagAssignment

from .models import MessageAnalysis

# What a list row shows (templates mail/message_list.html, search.html), and nothing else: the rest of a
# message row (keyword ids, address arrays, bodies) costs decoding time on every list page.
# A field missing here is loaded per row when a template touches it, which the list tests' query
# count catches.
LIST_FIELDS = (
    "owner_id", "account_id", "folder_id", "uid", "sort_date", "from_name", "from_address", "subject",
    "seen", "flagged", "has_attachments", "calendar_method",
    "account__name",
    "folder__name", "folder__delimiter",
    "analysis__owner_id", "analysis__state", "analysis__summary", "analysis__confidence",
    "analysis__final_category", "analysis__final_urgency", "analysis__final_importance",
)  # fmt: skip


_ROW_TAGS = TagAssignment.objects.select_related("tag").only("message_id", "tag__name", "tag__color")


def message_list(
    user,
    account: MailAccount | None = None,
    folder: Folder | None = None,
    *,
    urgency: int | None = None,
    importance: int | None = None,
    category: str = "",
    open_only: bool = False,
    tag_ids: list[int] | None = None,
    sender: str = "",
) -> QuerySet[Message]:
    """Live messages, newest first, with only what a list row shows (content stays encrypted).

    urgency/importance select a cell of the priority matrix; open_only leaves out what the user
    marked done and spam, as the matrix does; sender is a From address (the Newsletters page links it).
    """
    qs = queries.messages_of(user).filter(expunged_at__isnull=True)
    if account is not None:
        qs = qs.filter(account=account)
    if folder is not None:
        qs = qs.filter(folder=folder)
    if urgency:
        qs = qs.filter(analysis__final_urgency=urgency)
    if importance:
        qs = qs.filter(analysis__final_importance=importance)
    if category:
        qs = qs.filter(analysis__final_category=category)
    if open_only:
        qs = qs.filter(analysis__done_at__isnull=True, analysis__final_spam=False)
    if sender:
        qs = qs.filter(from_address=sender)
    for tag_id in tag_ids or ():
        qs = qs.filter(tag_assignments__tag_id=tag_id)  # several tags: all of them
    return (
        qs.select_related("account", "folder", "analysis")
        .prefetch_related(Prefetch("tag_assignments", queryset=_ROW_TAGS, to_attr="tag_list"))
        .only(*LIST_FIELDS)
        .order_by("-sort_date", "-id")
    )


def matrix_counts(user, account: MailAccount | None = None) -> dict[tuple[int, int], int]:
    """Open (not done, not spam) analysed messages per (urgency, importance) cell, in one query."""
    qs = MessageAnalysis.objects.filter(
        owner=user, state=MessageAnalysis.State.DONE, done_at__isnull=True, final_spam=False,
        message__expunged_at__isnull=True,
    )  # fmt: skip
    if account is not None:
        qs = qs.filter(message__account=account)
    rows = qs.values("final_urgency", "final_importance").annotate(n=Count("id"))
    return {(r["final_urgency"], r["final_importance"]): r["n"] for r in rows}


def thread_of(user, message: Message) -> QuerySet[Message]:
    """The conversation a message belongs to (same thread key), oldest first, across folders.

    A message without a key (no Message-ID, no subject) is a conversation of one.
    """
    qs = queries.messages_of(user).filter(expunged_at__isnull=True)
    qs = qs.filter(thread_key=message.thread_key) if message.thread_key else qs.filter(pk=message.pk)
    return qs.select_related("folder", "account", "analysis").defer("raw", "html_body").order_by("sort_date", "id")
