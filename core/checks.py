"""System checks of core's settings: `manage.py check` (and runserver, migrate) name a malformed allow list."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import outbound


@checks.register(checks.Tags.security)
def outbound_allow_list_parses(app_configs, **kwargs):
    try:
        outbound.allow_rules()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="core.E001")]
    return []
