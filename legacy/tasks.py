"""Celery task of the legacy import: the first-login conversion (ids in, one service call)."""

from celery import shared_task


@shared_task(name="mailhelper.convert_legacy_user")  # name kept from the project package: queued tasks still run
def convert_legacy_user(user_id: int) -> dict:
    """An imported user's first login: convert their legacy values (the key waits in Redis, sealed;
    this message carries only the id). Resumable: a redelivered task continues where it stopped."""
    from analysis.tasks import analyse_account

    from . import conversion

    result = conversion.convert_user(user_id)
    for account_id in result.analyse_accounts:
        analyse_account.delay(account_id=account_id)
    return {"state": result.state, "converted": result.converted, "failed": result.failed}
