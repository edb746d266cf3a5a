"""The Celery application: Redis broker, results in PostgreSQL, beat schedule in PostgreSQL.

All configuration lives in settings.py under the CELERY_ prefix so that one place documents it.
"""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailhelper.settings")

app = Celery("mailhelper")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _check_keys_at_worker_start(**_kwargs) -> None:
    """Refuse to start a worker that could not unwrap any user's data key."""
    from accounts.keyring import check_sync_key_at_startup

    check_sync_key_at_startup()


@task_prerun.connect
@task_postrun.connect
def _close_old_database_connections(sender=None, **_kwargs) -> None:
    """What Django does around a request, around a task: a connection past CONN_MAX_AGE, or one left
    unusable by an error, is closed, and a kept one is health-checked before its next use. Celery's
    fixup no longer closes every connection after every task (CELERY_DB_REUSE_MAX), so this keeps a
    restarted PostgreSQL or a broken transaction from reaching the next task."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # an eager task runs inside the caller's connection (and a test's transaction)
    from django.db import close_old_connections

    close_old_connections()
