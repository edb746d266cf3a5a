"""Celery task of the accounts floor: the daily purge of old audit events (accounts/audit.py)."""

from celery import shared_task

from . import audit


@shared_task(name="accounts.purge_audit_events")
def purge_audit_events() -> dict:
    """Periodic (beat row from accounts/migrations/0003): drop events past MAILHELPER_AUDIT_DAYS."""
    return {"deleted": audit.purge()}
