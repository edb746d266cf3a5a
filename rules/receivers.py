"""Run the user's rules on mail as soon as it is analysed (after tag suggestions)."""

from django.dispatch import receiver

from analysis.signals import messages_analysed

from . import service


@receiver(messages_analysed, dispatch_uid="rules.run")
def _run_rules(sender, owner_id: int, messages, **kwargs) -> None:
    service.run_on_messages(owner_id, messages)
