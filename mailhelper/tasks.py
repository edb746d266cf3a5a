"""Platform tasks."""

from celery import shared_task


@shared_task(name="mailhelper.tasks.ping")
def ping() -> str:
    """Smoke task: proves that a worker takes tasks from the broker and stores results."""
    return "pong"
