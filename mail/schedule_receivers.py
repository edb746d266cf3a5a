"""Keep beat rows in step with accounts however they change (UI, admin, user deletion)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import schedules
from .models import MailAccount


@receiver(post_save, sender=MailAccount)
def _account_saved(sender, instance: MailAccount, raw: bool = False, **kwargs) -> None:
    if not raw:
        schedules.ensure_schedule(instance)


@receiver(post_delete, sender=MailAccount)
def _account_deleted(sender, instance: MailAccount, **kwargs) -> None:
    schedules.remove_schedule(instance.periodic_task_id, instance.pk)
