"""Suggest tags for mail as soon as it is analysed."""

from django.dispatch import receiver

from mail.analysis.signals import messages_analysed

from . import service


@receiver(messages_analysed, dispatch_uid="tags.suggest")
def _suggest(sender, owner_id: int, messages, **kwargs) -> None:
    service.suggest_for(owner_id, messages)
