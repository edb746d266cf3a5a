"""Learn (or refresh) a user's topics once their newly analysed mail makes it worthwhile."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from .analysis.signals import messages_analysed

log = logging.getLogger(__name__)


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
