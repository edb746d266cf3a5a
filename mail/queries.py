"""Querysets scoped to their owner: every view starts from these, never from `.objects.all()`.

The list-row queries (with scores and tags) are analysis/queries.py, which builds on these."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import Folder, MailAccount, Message, SyncRun


def accounts_of(user) -> QuerySet[MailAccount]:
    return MailAccount.objects.filter(owner=user)


def folders_of(user) -> QuerySet[Folder]:
    return Folder.objects.filter(account__owner=user)


def messages_of(user) -> QuerySet[Message]:
    return Message.objects.filter(owner=user)


def sync_runs_of(user) -> QuerySet[SyncRun]:
    return SyncRun.objects.filter(account__owner=user)


# What the list page's sidebar and "move to" menu read of a folder and its account: the rest of the rows
# (the account's sealed passwords and tokens, the folder's sync state) cost decoding on every list page.
_MENU_FIELDS = ("id", "account_id", "name", "delimiter", "sync_enabled", "account__id", "account__name")


def server_folders(user) -> list[Folder]:
    """The user's folders that exist on their servers, with their accounts' names, by account and name."""
    return list(
        folders_of(user)
        .filter(exists_on_server=True)
        .select_related("account")
        .only(*_MENU_FIELDS)
        .order_by("account__name", "name")
    )


def move_targets(message: Message) -> list[Folder]:
    """The folders of the message's own account on the server it can move to (a message page's menu),
    by name: the columns the menu shows only (the rest of a folder row is its sync state)."""
    return list(
        Folder.objects.filter(account_id=message.account_id, exists_on_server=True)
        .exclude(pk=message.folder_id)
        .only("id", "account_id", "name", "delimiter")
        .order_by("name")
    )


def sidebar_folders(user, folders: list[Folder]) -> list[Folder]:
    """The synced ones among server_folders(user), with their unread counts (one query).

    The counts come from the partial index of unread live messages (message_unread_by_folder), so
    they cost what the unread mail costs, not what the whole mailbox does.
    """
    folders = [f for f in folders if f.sync_enabled]
    counts = dict(
        messages_of(user)
        .filter(seen=False, expunged_at__isnull=True, folder__in=[f.pk for f in folders])
        .values("folder_id")
        .annotate(n=Count("id"))
        .values_list("folder_id", "n")
    )
    for folder in folders:
        folder.unread = counts.get(folder.pk, 0)
    return folders
