"""WSGI entry point; checks the sync key before serving so a misconfigured web fails at start."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailhelper.settings")

application = get_wsgi_application()

from accounts.keyring import check_sync_key_at_startup  # noqa: E402

check_sync_key_at_startup()

from mailhelper.warmup import warm_up  # noqa: E402

warm_up()
