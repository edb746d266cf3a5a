"""events listens to mail (a lower floor) by its signals, never the other way round."""

from django.dispatch import receiver

from mail import signals

from . import store


@receiver(signals.messages_stored, dispatch_uid="events.record_invitations")
def record_invitations(sender, messages, **kwargs) -> None:
    store.record_invitations(messages)
