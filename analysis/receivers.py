"""How analysis follows mail without mail importing it (mail/signals.py).

- mail.signals.messages_stored: every stored message gets a pending analysis row in the same
  transaction, so a lost task can delay an analysis but never skip it (the stragglers task sweeps);
  a deferred row where its account's "Analyse new mail" is off (a re-analysis takes those).
- mail.signals.new_mail_synced: the account's pending messages are analysed by a task (id only).
- mail.replies: the user's language model writes reply drafts when they set one up for replies.

What runs after analysis is no signal: analysis/post_analysis.py runs the ordered stages.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.dispatch import receiver

from accounts import keyring
from accounts.fields import sealed_value
from core.db.copy import copy_insert_values
from mail import replies
from mail.models import MailAccount
from mail.signals import messages_stored, new_mail_synced

from .models import MessageAnalysis
from .replies import write_with_model


@receiver(messages_stored, dispatch_uid="analysis.queue")
def _queue_stored(sender, messages, **kwargs) -> None:
    """A pending row per message; deferred instead where the account's "Analyse new mail" is off.

    Plain values, no MessageAnalysis instances: three columns vary, the other 28 are defaults
    (#15, docs/notes/sync-speed.md). The empty summary is sealed per row, as save() would seal it."""
    account_ids = {m.account_id for m in messages}
    off = set(MailAccount.objects.filter(pk__in=account_ids, analyse_on_fetch=False).values_list("pk", flat=True))
    keys = {owner_id: keyring.dek_for(owner_id) for owner_id in {m.owner_id for m in messages}}
    rows = []
    for m in messages:
        pk = uuid.uuid4()
        rows.append(
            {
                "id": pk,
                "owner_id": m.owner_id,
                "message_id": m.pk,
                "state": MessageAnalysis.State.DEFERRED if m.account_id in off else MessageAnalysis.State.PENDING,
                "summary": sealed_value(MessageAnalysis, "summary", m.owner_id, pk, "", keys[m.owner_id]),
            }
        )
    copy_insert_values(MessageAnalysis, rows)


@receiver(new_mail_synced, dispatch_uid="analysis.after_sync")
def _analyse_after_sync(sender, account_id: str, **kwargs) -> None:
    """Queue the account's analysis unless one is queued and not started yet (the signal comes often)."""
    from .tasks import ANALYSIS_QUEUED, analyse_account

    if cache.add(ANALYSIS_QUEUED.format(account_id), 1, timeout=300):  # expires: a lost task only delays
        analyse_account.delay(account_id=account_id)


replies.set_reply_writer(write_with_model)
