"""Celery wrapper: the user id in (from the user's beat row), one service call."""

from celery import shared_task

from . import sending


@shared_task(name="digest.send_digest")
def send_digest(owner_id: int) -> str:
    return sending.send(owner_id)
