"""The inbox's querysets: list rows with their scores and tags, the matrix, conversations.

Scoped to their owner through mail/queries.py. They are analysis's because a list row shows what
analysis concluded and which tags the message has (a query goes where everything it reads is visible).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mail import queries
from mail.models import Folder, MailAccount, Message
from mail.replies import own_addresses
from mail.snooze import answers_to
from tags.models import TagAssignment

from .models import MessageAnalysis
from .types import Category

# The lists of reply tracking and snooze (?view=...), with their titles.
VIEWS = {"to_reply": _("To reply"), "awaiting": _("Awaiting reply"), "snoozed": _("Snoozed")}
# Where mail that waits for the user's answer is not: their own folders of finished or unwanted mail.
_NOT_TO_ANSWER = ("sent", "drafts", "trash", "junk")

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
    view: str = "",
) -> QuerySet[Message]:
    """Live messages, newest first, with only what a list row shows (content stays encrypted).

    urgency/importance select a cell of the priority matrix; open_only leaves out what the user
    marked done and spam, as the matrix does (and what is snoozed); sender is a From address (the
    Newsletters page links it); view is one of VIEWS.
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
        qs = qs.filter(analysis__done_at__isnull=True, analysis__final_spam=False, snoozed_until__isnull=True)
    if view:
        qs = _view(qs, user, view)
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


def _view(qs: QuerySet[Message], user, view: str) -> QuerySet[Message]:
    if view == "to_reply":
        return to_reply(qs)
    if view == "awaiting":
        return awaiting_reply(qs, user)
    if view == "snoozed":
        return qs.filter(snoozed_until__isnull=False)
    return qs


def to_reply(qs: QuerySet[Message]) -> QuerySet[Message]:
    """Mail that expects an answer from the user (the analysis says so) and has none from them yet."""
    return qs.filter(_to_reply())


def _to_reply() -> Q:
    return Q(
        analysis__final_category=Category.REPLY_EXPECTED, answered=False, analysis__done_at__isnull=True,
        analysis__final_spam=False, snoozed_until__isnull=True,
    ) & ~Q(folder__special_use__in=_NOT_TO_ANSWER)  # fmt: skip


def awaiting_reply(qs: QuerySet[Message], user, addresses: set[str] | None = None) -> QuerySet[Message]:
    """Mail the user sent that expects an answer, unanswered for MAILHELPER_AWAITING_REPLY_DAYS, or with a
    reminder set; an answer is a later message of the conversation from someone else.

    addresses: the user's own addresses (mail.replies.own_addresses), for a caller that has their accounts
    loaded already; read from the database when not given."""
    return qs.annotate(sender=Lower("from_address")).filter(_awaiting_reply(user, addresses))


def _awaiting_reply(user, addresses: set[str] | None) -> Q:
    """awaiting_reply's condition, on a queryset annotated with `sender` (the lower-cased From address)."""
    cutoff = timezone.now() - timedelta(days=settings.MAILHELPER_AWAITING_REPLY_DAYS)
    expects = Q(analysis__final_category__in=[Category.REPLY_EXPECTED, Category.ACTION_REQUIRED], sort_date__lte=cutoff)
    if addresses is None:
        addresses = own_addresses(user.pk)
    return (
        Q(sender__in=sorted(addresses))
        & (expects | Q(follow_up_at__isnull=False))
        & ~Q(thread_key="", follow_up_at__isnull=True)  # no conversation to look for an answer in
        & ~Exists(answers_to())
    )


def tracking_counts(user, addresses: set[str] | None = None) -> dict[str, int]:
    """How many messages each list of VIEWS holds (the dashboard shows them).

    One query (two without addresses, see awaiting_reply): each list's own condition counts as an
    aggregate's FILTER over the user's live messages, so a count cannot disagree with its list, and
    the dashboard compiles and waits for one query instead of three on every view (#15).
    """
    live = queries.messages_of(user).filter(expunged_at__isnull=True).annotate(sender=Lower("from_address"))
    return live.aggregate(
        to_reply=Count("pk", filter=_to_reply()),
        awaiting=Count("pk", filter=_awaiting_reply(user, addresses)),
        snoozed=Count("pk", filter=Q(snoozed_until__isnull=False)),
    )


def matrix_counts(user, account: MailAccount | None = None) -> dict[tuple[int, int], int]:
    """Open (not done, not spam) analysed messages per (urgency, importance) cell, in one query."""
    return matrix_and_pending(user, account, pending=False)[0]


def matrix_and_pending(
    user, account: MailAccount | None = None, *, pending: bool = True
) -> tuple[dict[tuple[int, int], int], int]:
    """matrix_counts, and how many of all the user's messages wait for analysis, in one query.

    The dashboard shows both; one grouped query over the user's analyses instead of a second count
    saves its compiling and round trip on every dashboard view (#15). Pending rows are not in the
    matrix (it counts analysed ones) and are counted across all accounts, as the notice says.
    """
    cells = Q(
        state=MessageAnalysis.State.DONE, done_at__isnull=True, final_spam=False,
        message__expunged_at__isnull=True, message__snoozed_until__isnull=True,
    )  # fmt: skip
    if account is not None:
        cells &= Q(message__account=account)
    wanted = cells | Q(state=MessageAnalysis.State.PENDING) if pending else cells
    rows = (
        MessageAnalysis.objects.filter(owner=user)
        .filter(wanted)
        .values("state", "final_urgency", "final_importance")
        .annotate(n=Count("id"))
        .order_by()
    )
    matrix: dict[tuple[int, int], int] = {}
    waiting = 0
    for r in rows:
        if r["state"] == MessageAnalysis.State.PENDING:
            waiting += r["n"]
        else:
            matrix[(r["final_urgency"], r["final_importance"])] = r["n"]
    return matrix, waiting


def thread_of(user, message: Message) -> QuerySet[Message]:
    """The conversation a message belongs to (same thread key), oldest first, across folders.

    A message without a key (no Message-ID, no subject) is a conversation of one.
    """
    qs = queries.messages_of(user).filter(expunged_at__isnull=True)
    qs = qs.filter(thread_key=message.thread_key) if message.thread_key else qs.filter(pk=message.pk)
    return qs.select_related("folder", "account", "analysis").defer("raw", "html_body").order_by("sort_date", "id")


class _RowCount(Subquery):
    """The number of rows a correlated subquery finds, as one column of the outer query."""

    template = "(SELECT count(*) FROM (%(subquery)s) _rows)"
    output_field = IntegerField()


# Not read for the message page itself: the raw source (tens of KB to 25 MB, fetched only to show remote
# images) and the keyword index.
_PAGE_DEFERRED = ("raw", "search_ids")
# What the page reads of the message's account and folder (its name, whether it is POP3, the folder's
# name as shown). The account's other columns include its sealed passwords and tokens, which a page has no
# business holding (measured: no CPU saving, #15; the point is what stays out of the request).
_PAGE_ACCOUNT_COLUMNS = ("account__id", "account__owner_id", "account__name", "account__protocol")
_PAGE_FOLDER_COLUMNS = ("folder__id", "folder__account_id", "folder__name", "folder__delimiter", "folder__special_use")


def _unread_columns(relation: str, read: tuple[str, ...]) -> list[str]:
    """defer() names for every column of the related model but those read: a column added to the model
    later stays unread until the page asks for it, rather than loaded by default."""
    model = Message._meta.get_field(relation).related_model
    return [f"{relation}__{f.attname}" for f in model._meta.concrete_fields if f"{relation}__{f.attname}" not in read]


def message_page(user) -> QuerySet[Message]:
    """The user's messages as their page reads one: with account, folder and analysis, and two facts the
    page shows that were a query each (#15), now columns of the same row:

    - thread_size: how many live messages its conversation has (thread_of(...).count(); 1 without a key);
    - own_message: whether it is from one of the user's own addresses (mail.replies.own_addresses).
    """
    same_thread = (
        queries.messages_of(user)
        .filter(expunged_at__isnull=True, thread_key=OuterRef("thread_key"))
        .order_by()
        .values("pk")
    )
    own = (
        queries.accounts_of(user)
        .annotate(address=Lower("email_address"))
        .filter(address=Lower(OuterRef("from_address")))
    )
    return (
        queries.messages_of(user)
        .select_related("account", "folder", "analysis")
        .defer(
            *_PAGE_DEFERRED,
            *_unread_columns("account", _PAGE_ACCOUNT_COLUMNS),
            *_unread_columns("folder", _PAGE_FOLDER_COLUMNS),
        )
        .annotate(
            thread_size=Case(When(thread_key="", then=Value(1)), default=_RowCount(same_thread)),
            own_message=Exists(own),
        )
    )
