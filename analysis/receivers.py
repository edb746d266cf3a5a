"""How analysis follows mail without mail importing it (mail/signals.py), and what it does after analysis.

- mail.signals.messages_stored: every stored message gets a pending analysis row in the same
  transaction, so a lost task can delay an analysis but never skip it (the stragglers task sweeps).
- mail.signals.new_mail_synced: the account's pending messages are analysed by a task (id only).
- analysis.signals.messages_analysed: topics are learned once the user's mail makes it worthwhile,
  then tags are suggested (in this order; rules, a floor up, run after them).
- mail.replies: the user's language model writes reply drafts when they set one up for replies.
"""

from __future__ import annotations

import logging

from django.dispatch import receiver

from core.db.copy import copy_insert
from mail import replies
from mail.signals import messages_stored, new_mail_synced

from .models import MessageAnalysis
from .replies import write_with_model
from .signals import messages_analysed

log = logging.getLogger(__name__)


@receiver(messages_stored, dispatch_uid="analysis.queue")
def _queue_stored(sender, messages, **kwargs) -> None:
    copy_insert(MessageAnalysis, [MessageAnalysis(owner_id=m.owner_id, message=m) for m in messages])


@receiver(new_mail_synced, dispatch_uid="analysis.after_sync")
def _analyse_after_sync(sender, account_id: str, **kwargs) -> None:
    from .tasks import analyse_account

    analyse_account.delay(account_id=account_id)


@receiver(messages_analysed, dispatch_uid="mail.topics")
def _learn_topics(sender, owner_id: int, messages, **kwargs) -> None:
    """A small mailbox is fitted here, in the analysis task (well under a second); a big one by the
    `mail.fit_topics` task, queued once (user id only). A failure never fails the analysis."""
    from . import similarity, tasks

    try:
        if not similarity.needs_fit(owner_id):
            return
        if similarity.fit_inline(owner_id):
            similarity.fit(owner_id)
        elif similarity.claim_fit(owner_id):
            tasks.fit_topics.delay(owner_id)
    except Exception as exc:  # noqa: BLE001 - topics are a convenience; the analyses are committed
        log.warning("learning topics for user %s failed: %s", owner_id, type(exc).__name__)


@receiver(messages_analysed, dispatch_uid="tags.suggest")
def _suggest_tags(sender, owner_id: int, messages, **kwargs) -> None:
    from tags import service

    service.suggest_for(owner_id, messages)


replies.set_reply_writer(write_with_model)
