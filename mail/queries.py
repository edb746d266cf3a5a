"""Querysets scoped to their owner: every view starts from these, never from `.objects.all()`."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from .models import Folder, MailAccount, Message, SyncRun

LIST_DEFERRED = ("raw", "text_body", "html_body", "references", "parse_warnings")


def accounts_of(user) -> QuerySet[MailAccount]:
    return MailAccount.objects.filter(owner=user)


def folders_of(user) -> QuerySet[Folder]:
    return Folder.objects.filter(account__owner=user)


def messages_of(user) -> QuerySet[Message]:
    return Message.objects.filter(owner=user)


def sync_runs_of(user) -> QuerySet[SyncRun]:
    return SyncRun.objects.filter(account__owner=user)


def message_list(user, account: MailAccount | None = None, folder: Folder | None = None) -> QuerySet[Message]:
    """Live messages, newest first, with only what a list row shows (content stays encrypted)."""
    qs = messages_of(user).filter(expunged_at__isnull=True)
    if account is not None:
        qs = qs.filter(account=account)
    if folder is not None:
        qs = qs.filter(folder=folder)
    return qs.select_related("account", "folder").defer(*LIST_DEFERRED).order_by("-sort_date", "-id")


def sidebar_folders(user) -> QuerySet[Folder]:
    """Synced folders with their unread counts, in one query."""
    return (
        folders_of(user)
        .filter(sync_enabled=True, exists_on_server=True)
        .select_related("account")
        .annotate(unread=Count("messages", filter=Q(messages__seen=False, messages__expunged_at__isnull=True)))
        .order_by("account__name", "name")
    )
