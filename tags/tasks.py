"""Celery wrapper: the user id in, one service call."""

from celery import shared_task

from . import keywords


@shared_task(name="tags.keywords_catch_up")
def keywords_catch_up(owner_id: int) -> tuple[int, int]:
    return keywords.catch_up(owner_id)
