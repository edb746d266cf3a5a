"""The Celery application: Redis broker, results in PostgreSQL, beat schedule in PostgreSQL.

All configuration lives in settings.py under the CELERY_ prefix so that one place documents it.
"""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailhelper.settings")

app = Celery("mailhelper")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _check_keys_at_worker_start(**_kwargs) -> None:
    """Refuse to start a worker that could not unwrap any user's data key."""
    from accounts.keyring import check_sync_key_at_startup

    check_sync_key_at_startup()
