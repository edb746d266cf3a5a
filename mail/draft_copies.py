"""Copies of drafts in the server's Drafts folder, so the user's phone shows what they are writing.

* Saving a draft queues one "copy to Drafts" outbox row; while one is pending no second is added: the
  replay writes the version current then, so ten saves during an IMAP outage cost one APPEND.
* The replay builds the draft as it would be sent (recipients not required), APPENDs it with \\Draft
  and \\Seen, and only then deletes the older copies with the same Message-ID: a crash in between
  leaves two copies for the next replay to clean, never none.
* Sending or deleting the draft queues "remove from Drafts" by Message-ID; that row has no draft (it
  outlives it). A draft never copied queues nothing.
* POP3 accounts have no folders: nothing is queued for them.
"""

from __future__ import annotations

from django.utils import timezone

from . import imap
from .actions import announce_on_commit
from .models import Draft, Folder, MailAccount, PendingAction
from .sending import SMTP_POLICY, build_message, new_message_id

Kind = PendingAction.Kind


def _folder_name(account: MailAccount) -> str:
    known = account.folders.filter(special_use=Folder.SpecialUse.DRAFTS, exists_on_server=True).first()
    return known.name if known else ""


def record_saved(draft: Draft) -> None:
    """After the user saved a draft: queue its copy for the server (at most one pending per draft)."""
    if draft.account.is_pop3:
        return
    if not draft.rfc_message_id:
        draft.rfc_message_id = new_message_id(draft.account)
        Draft.objects.filter(pk=draft.pk, rfc_message_id="").update(rfc_message_id=draft.rfc_message_id)
    if not draft.server_copy:
        draft.server_copy = True
        Draft.objects.filter(pk=draft.pk).update(server_copy=True)
    if PendingAction.objects.filter(draft=draft, kind=Kind.APPEND_DRAFT, done_at__isnull=True).exists():
        return
    PendingAction.objects.create(
        owner_id=draft.owner_id,
        account_id=draft.account_id,
        draft=draft,
        kind=Kind.APPEND_DRAFT,
        source_folder="",
        target_folder=_folder_name(draft.account),
        draft_message_id=draft.rfc_message_id,
    )
    announce_on_commit([draft.account_id])


def record_gone(draft: Draft) -> None:
    """Before a draft is deleted, or once it was sent: its copy on the server is to go."""
    if draft.account.is_pop3 or not draft.rfc_message_id or not draft.server_copy:
        return  # never copied to the server
    PendingAction.objects.create(
        owner_id=draft.owner_id,
        account_id=draft.account_id,
        draft=None,
        kind=Kind.REMOVE_DRAFT,
        source_folder="",
        target_folder=_folder_name(draft.account),
        draft_message_id=draft.rfc_message_id,
    )
    announce_on_commit([draft.account_id])


def perform(session: imap.ImapSession, action: PendingAction) -> None:
    folder = action.target_folder or _server_folder(session, action.account)
    older = session.find_message_id(folder, action.draft_message_id)
    if action.kind == Kind.APPEND_DRAFT:
        draft = Draft.objects.filter(pk=action.draft_id).select_related("account", "owner").first()
        if draft is not None and draft.editable:
            raw = build_message(draft, draft.updated_at or timezone.now(), copy=True).as_bytes(policy=SMTP_POLICY)
            session.append(folder, raw, flags=(imap.DRAFT, imap.SEEN), when=draft.updated_at)
    if older:
        session.delete(folder, older)


def _server_folder(session: imap.ImapSession, account: MailAccount) -> str:
    """The Drafts folder as the server names it (special-use), else a new "Drafts" among the user's folders."""
    for folder in session.list_folders():
        if folder.special_use == "drafts" and folder.selectable:
            return folder.name
    return session.create_folder("Drafts")
