"""System checks: `manage.py check` (and runserver, migrate) report a bad sync key by name."""

from django.core import checks

from .keyring import SyncKeyError, load_sync_key


@checks.register(checks.Tags.security)
def sync_key_configured(app_configs, **kwargs):
    try:
        load_sync_key()
    except SyncKeyError as exc:
        return [checks.Error(str(exc), id="accounts.E001")]
    return []
