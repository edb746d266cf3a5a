"""User and rule actions on messages: applied here at once, written to the server by an outbox.

`apply()` changes the local rows and records a PendingAction in one transaction; `write_back()`
(run by a task) replays the pending actions over IMAP. Rules call `apply()` too, so UI and
rules share one path to the server. Sending a reply uses the same outbox (`record_sent()`): the
\\Answered flag on the original and the copy in the Sent folder are retried while IMAP is down,
never lost.

POP3 accounts have no server state to write to: read, flagged, answered and forwarded change
here only (no PendingAction), and what needs server folders (moving, deleting to Trash, archiving,
the copy in Sent) raises ActionError with `MailAccount.imap_only_reason`, for the UI and rules alike.

Whatever records a PendingAction announces `signals.outbox_changed` for its account when the
transaction commits (never before: the write-back must find the rows; never after a rollback),
once per call however many messages it changed. mail.tasks subscribes and queues the write-back
(coalescing announcements while one is still queued); this module imports no task.

Keywords (`set_keywords`): a higher app (tags) decides which IMAP keyword stands for what and
hands the string over; mail only checks it is a valid atom, changes Message.keywords here at once
and queues ADD_KEYWORD / REMOVE_KEYWORD with the keyword in the row. Because the local keywords
already hold the change, the sync that later sees it on the server finds nothing new (no echo).
Nothing is queued for POP3, and nothing for a folder whose last read-write SELECT said it keeps
no keywords (Folder.keywords_allowed False); unknown (None) is tried, and the write-back's SELECT
records the answer: a folder that refuses closes the row with an error instead of retrying, and
gives the message back the keywords the server keeps (else the next sync would take the
difference for another client's change).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from core import stored_text
from core.db.locks import lock_key, try_advisory_lock
from core.stored_text import Text

from . import imap, signals
from .models import Draft, Folder, MailAccount, Message, PendingAction
from .sync import server_config

log = logging.getLogger(__name__)

Kind = PendingAction.Kind
_LOCAL_FLAG_CHANGES = {
    Kind.MARK_READ: ("seen", True),
    Kind.MARK_UNREAD: ("seen", False),
    Kind.FLAG: ("flagged", True),
    Kind.UNFLAG: ("flagged", False),
    Kind.MARK_ANSWERED: ("answered", True),
}
FORWARDED = "$Forwarded"  # the keyword mail clients use for "forwarded" (RFC 5550)


class WriteBackRunning(Exception):
    """Another write-back of the account is running (on this worker or another).

    Two at once would each replay the rows they read, and a MOVE sent twice while the first is in
    flight can leave two copies in the target folder on the server (seen on Dovecot). The running
    one will not see rows recorded after it read the outbox, so the caller tries again later.
    """


class ActionError(Exception):
    """The action cannot be applied (e.g. no Trash folder); the message is for the user: a
    core.stored_text Text, so a view shows `str(exc)` in its language and the rule log stores it."""


def refuse_imap_only(account: MailAccount) -> None:
    """ActionError for an action that needs IMAP (server folders), with the reason fit for the user."""
    if account.is_pop3:
        raise ActionError(Text(account.POP3_ONLY_REASON))


def trash_folder(account: MailAccount) -> Folder:
    refuse_imap_only(account)
    folder = account.folders.filter(special_use=Folder.SpecialUse.TRASH, exists_on_server=True).first()
    if folder is None:
        raise ActionError(Text(gettext_noop("This account has no Trash folder on the server.")))
    return folder


def archive_folder(account: MailAccount) -> Folder:
    refuse_imap_only(account)
    folder = account.folders.filter(special_use=Folder.SpecialUse.ARCHIVE, exists_on_server=True).first()
    if folder is None:
        raise ActionError(Text(gettext_noop("This account has no Archive folder on the server.")))
    return folder


def announce_on_commit(account_ids: Iterable) -> None:
    """Send outbox_changed for each account once the current transaction commits.

    On commit, not now: the write-back task must find the rows, and a transaction that is rolled
    back (Django drops the hooks of a rolled-back savepoint too) has nothing to write back. Robust:
    the change is committed by then, and a write-back that could not be queued (Redis away) only
    waits for the next sync, which replays a stale outbox (mail.tasks.sync_account).
    """
    for account_id in {str(a) for a in account_ids}:
        announce = partial(signals.outbox_changed.send, sender=PendingAction, account_id=account_id)
        transaction.on_commit(announce, robust=True)


@transaction.atomic
def apply(messages: Iterable[Message], kind: str, target: Folder | None = None) -> int:
    """Apply one action to messages (of one owner); returns how many changed.

    The write-back is announced (signals.outbox_changed) when the transaction commits.
    """
    changed = 0
    queued_for: set = set()
    for message in messages:
        if kind in _LOCAL_FLAG_CHANGES:
            field, value = _LOCAL_FLAG_CHANGES[kind]
            if getattr(message, field) == value:
                continue
            setattr(message, field, value)
            Message.objects.filter(pk=message.pk).update(**{field: value})
        elif kind == Kind.MOVE:
            refuse_imap_only(message.account)
            if target is None or target.account_id != message.account_id:
                raise ActionError(Text(gettext_noop("Choose a folder of the same account.")))
            if message.folder_id == target.pk:
                continue
        elif kind == Kind.MARK_FORWARDED:
            if FORWARDED in message.keywords:
                continue
            message.keywords = [*message.keywords, FORWARDED]
            Message.objects.filter(pk=message.pk).update(keywords=message.keywords)
        else:
            raise ActionError(Text(gettext_noop("Unknown action %(action)s."), action=repr(kind)))
        changed += 1
        if message.account.is_pop3:
            continue  # changed here, which is all there is: POP3 keeps no flags on the server
        action = PendingAction(
            owner_id=message.owner_id,
            account_id=message.account_id,
            message=message,
            kind=kind,
            source_folder=message.folder.name,
            source_uidvalidity=message.uidvalidity,
            source_uid=message.uid,
            target_folder=target.name if target else "",
        )
        if kind == Kind.MOVE:
            # Shown in the target folder at once; the next sync there learns its new UID.
            message.folder = target
            Message.objects.filter(pk=message.pk).update(folder=target, uid=None, uidvalidity=None, modseq=None)
        action.save()
        queued_for.add(message.account_id)
    announce_on_commit(queued_for)
    return changed


class KeywordsRefused(imap.ImapFolderError):
    """The folder keeps no keywords (PERMANENTFLAGS without \\*): retrying will not help."""


def keywords_possible(message: Message) -> bool:
    """Whether a keyword change on this message can be written to its server (the decision alone)."""
    return (
        not message.account.is_pop3
        and message.uid is not None
        and message.folder.exists_on_server
        and message.folder.keywords_allowed is not False
    )


@transaction.atomic
def set_keywords(message: Message, add: Iterable[str] = (), remove: Iterable[str] = ()) -> int:
    """Add and remove IMAP keywords on one message, here at once and on the server by the outbox.

    Keywords compare without case (RFC 3501: flags are case-insensitive); one already present
    (or already absent) changes nothing and queues nothing. Returns how many were queued.
    Raises ValueError for a string that is no keyword (mail.imap.is_keyword).
    """
    add, remove = list(add), list(remove)
    for keyword in [*add, *remove]:
        if not imap.is_keyword(keyword):
            raise ValueError(f"not an IMAP keyword: {keyword!r}")
    if not keywords_possible(message):
        return 0
    # Locked and read again: the caller's copy may be stale, and two taggings at once must both land.
    current = Message.objects.select_for_update().only("keywords").get(pk=message.pk).keywords
    held = {k.casefold() for k in current}
    kinds: list[tuple[str, str]] = []
    for keyword in add:
        if keyword.casefold() not in held:
            held.add(keyword.casefold())
            current = [*current, keyword]
            kinds.append((Kind.ADD_KEYWORD, keyword))
    for keyword in remove:
        if keyword.casefold() in held:
            held.discard(keyword.casefold())
            current = [k for k in current if k.casefold() != keyword.casefold()]
            kinds.append((Kind.REMOVE_KEYWORD, keyword))
    if not kinds:
        return 0
    message.keywords = sorted(current)  # sorted like sync stores them, so an unchanged server compares equal
    Message.objects.filter(pk=message.pk).update(keywords=message.keywords)
    PendingAction.objects.bulk_create(
        PendingAction(
            owner_id=message.owner_id,
            account_id=message.account_id,
            message=message,
            kind=kind,
            keyword=keyword,
            source_folder=message.folder.name,
            source_uidvalidity=message.uidvalidity,
            source_uid=message.uid,
        )
        for kind, keyword in kinds
    )
    announce_on_commit([message.account_id])
    return len(kinds)


def record_sent(draft: Draft) -> None:
    """After a draft went out over SMTP: flag the original and queue the copy for the Sent folder.

    Call inside the transaction that marks the draft sent, so either both are recorded or neither
    (and the write-back is announced when that transaction commits).
    """
    original = draft.original
    if original is not None:  # a new message answers nothing
        apply([original], Kind.MARK_FORWARDED if draft.kind == Draft.Kind.FORWARD else Kind.MARK_ANSWERED)
    if draft.account.is_pop3:
        # No Sent folder to APPEND to: the sent copy is not kept (as when a server refuses it for good).
        Draft.objects.filter(pk=draft.pk).update(sent_raw=None)
        return
    from . import draft_copies  # see _perform

    draft_copies.record_gone(draft)  # its copy in Drafts goes; queued first, the copy in Sent follows
    sent = draft.account.folders.filter(special_use=Folder.SpecialUse.SENT, exists_on_server=True).first()
    PendingAction.objects.create(
        owner_id=draft.owner_id,
        account_id=draft.account_id,
        message=original,
        draft=draft,
        kind=Kind.APPEND_SENT,
        source_folder=original.folder.name if original is not None else "",
        target_folder=sent.name if sent else "",
    )
    announce_on_commit([draft.account_id])


def pending_actions(account_id, older_than: timedelta | None = None):
    """Changes made here that still wait to be written to the account's server (for longer than `older_than`)."""
    waiting = PendingAction.objects.filter(account_id=account_id, done_at__isnull=True)
    if older_than is not None:
        waiting = waiting.filter(created_at__lt=timezone.now() - older_than)
    return waiting


def has_pending(account_id, older_than: timedelta | None = None) -> bool:
    return pending_actions(account_id, older_than).exists()


def write_back(account_id) -> tuple[int, int]:
    """Replay the account's pending actions on the server, oldest first. Returns (done, failed).

    One at a time per account (a PostgreSQL advisory lock, released if the worker dies): raises
    WriteBackRunning while another runs. Raises imap.ImapConnectError/ImapAuthError when the server
    cannot be used at all, so the task retries later; a single action the server refuses is
    recorded and skipped.
    """
    with try_advisory_lock(write_back_lock_key(account_id)) as acquired:
        if not acquired:
            raise WriteBackRunning(f"a write-back of account {account_id} is running")
        return _write_back(account_id)


def write_back_lock_key(account_id) -> int:
    """The advisory lock a running write-back of the account holds (tests take it to play one)."""
    return lock_key(f"mail/write-back/{account_id}")


def _write_back(account_id) -> tuple[int, int]:
    account = MailAccount.objects.get(pk=account_id)
    pending = list(PendingAction.objects.filter(account=account, done_at__isnull=True).order_by("created_at", "id"))
    if not pending:
        return 0, 0
    if account.is_pop3:  # none are recorded for POP3 (apply), but an account switched from IMAP may hold some
        PendingAction.objects.filter(pk__in=[a.pk for a in pending]).update(
            done_at=timezone.now(), error=stored_text.dump(Text(account.POP3_ONLY_REASON), 300)
        )
        return 0, len(pending)
    done = failed = 0
    with imap.ImapSession(server_config(account)) as session:
        for action in pending:
            action.attempts += 1
            try:
                _perform(session, action)
            except imap.ImapFolderError as exc:
                action.error = stored_text.dump(stored_text.message_of(exc), 300)  # shown translated
                failed += 1
                if action.attempts >= 5 or isinstance(exc, KeywordsRefused):
                    action.done_at = timezone.now()  # give up; the next sync shows the server's truth
                    if action.kind in (Kind.ADD_KEYWORD, Kind.REMOVE_KEYWORD) and action.attempts >= 5:
                        _undo_keyword(action)  # the local keywords must not stay ahead of the server's
            else:
                action.done_at, action.error = timezone.now(), ""
                done += 1
            action.save(update_fields=["attempts", "error", "done_at"])
    return done, failed


def _perform(session: imap.ImapSession, action: PendingAction) -> None:
    if action.kind == Kind.APPEND_SENT:
        _append_sent(session, action)
        return
    if action.kind in (Kind.APPEND_DRAFT, Kind.REMOVE_DRAFT):
        from . import draft_copies  # it builds messages with sending, which imports this module

        draft_copies.perform(session, action)
        return
    if action.source_uid is None:
        return  # the message had no server identity yet (moved twice before a sync): nothing to do
    uids = [action.source_uid]
    current = session.select(action.source_folder, readonly=False)
    if current.uidvalidity != action.source_uidvalidity:
        raise imap.ImapFolderError("The folder was renumbered on the server; the change was not applied.")
    if current.keywords_allowed is not None:  # a read-write SELECT: remember what it said about keywords
        Folder.objects.filter(account_id=action.account_id, name=action.source_folder).exclude(
            keywords_allowed=current.keywords_allowed
        ).update(keywords_allowed=current.keywords_allowed)
    if action.kind == Kind.MARK_READ:
        session.add_flags(action.source_folder, uids, [imap.SEEN])
    elif action.kind == Kind.MARK_UNREAD:
        session.remove_flags(action.source_folder, uids, [imap.SEEN])
    elif action.kind == Kind.FLAG:
        session.add_flags(action.source_folder, uids, [imap.FLAGGED])
    elif action.kind == Kind.UNFLAG:
        session.remove_flags(action.source_folder, uids, [imap.FLAGGED])
    elif action.kind == Kind.MOVE:
        session.move(action.source_folder, uids, action.target_folder)
    elif action.kind == Kind.MARK_ANSWERED:
        session.add_flags(action.source_folder, uids, [imap.ANSWERED])
    elif action.kind == Kind.MARK_FORWARDED:
        session.add_flags(action.source_folder, uids, [FORWARDED])
    elif action.kind in (Kind.ADD_KEYWORD, Kind.REMOVE_KEYWORD):
        if not current.keywords_allowed:
            _undo_keyword(action)
            raise KeywordsRefused(f"The folder {action.source_folder!r} keeps no keywords on this server.")
        change = session.add_flags if action.kind == Kind.ADD_KEYWORD else session.remove_flags
        change(action.source_folder, uids, [action.keyword])


@transaction.atomic
def _undo_keyword(action: PendingAction) -> None:
    """Give the message back the keywords the server keeps, so the next sync sees no change by another client."""
    message = Message.objects.select_for_update().only("keywords").filter(pk=action.message_id).first()
    if message is None:
        return
    others = [k for k in message.keywords if k.casefold() != action.keyword.casefold()]
    restored = sorted(others if action.kind == Kind.ADD_KEYWORD else [*others, action.keyword])
    Message.objects.filter(pk=message.pk).update(keywords=restored)


def _append_sent(session: imap.ImapSession, action: PendingAction) -> None:
    """Put the sent message into the Sent folder once, even if an earlier attempt got halfway."""
    draft = Draft.objects.filter(pk=action.draft_id).first()
    if draft is None or draft.sent_raw is None:
        return  # already appended (the copy is dropped then), or the draft is gone
    folder = action.target_folder or _sent_folder(session, action.account)
    if not draft.rfc_message_id or not session.find_message_id(folder, draft.rfc_message_id):
        session.append(folder, draft.sent_raw, flags=(imap.SEEN,), when=draft.sent_at)
    Draft.objects.filter(pk=draft.pk).update(sent_raw=None)  # the server holds it now


def _sent_folder(session: imap.ImapSession, account: MailAccount) -> str:
    """The account's Sent folder: known from sync, else as the server names it, else a new "Sent"
    among the user's folders (below INBOX on Cyrus: ImapSession.create_folder)."""
    known = account.folders.filter(special_use=Folder.SpecialUse.SENT, exists_on_server=True).first()
    if known is not None:
        return known.name
    for folder in session.list_folders():
        if folder.special_use == "sent" and folder.selectable:
            return folder.name
    return session.create_folder("Sent")
