"""One write-back per account at a time: two replaying the same outbox could repeat a MOVE."""

import pytest
from django.db import connections

from mail import actions
from mail.models import Message, PendingAction
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import make_raw, run_sync

pytestmark = pytest.mark.django_db


def hold_write_back_lock(account_id):
    """Another database session holding the account's write-back lock, as a running write-back does."""
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [actions.write_back_lock_key(account_id)])
    return other


def test_a_write_back_while_another_runs_touches_nothing_and_leaves_the_outbox_for_later(
    dovecot, imap_user, mail_account
):
    dovecot.deliver(imap_user, make_raw(1))
    run_sync(mail_account)
    message = Message.objects.get()
    actions.apply([message], "flag")

    other = hold_write_back_lock(mail_account.pk)
    try:
        with pytest.raises(actions.WriteBackRunning):
            actions.write_back(mail_account.pk)
        action = PendingAction.objects.get()
        assert action.done_at is None and action.attempts == 0  # not tried, so not counted
        assert "\\Flagged" not in srv.server_flags(dovecot, imap_user)[message.uid]
    finally:
        other.close()  # PostgreSQL drops a closed session's locks, as when a worker dies

    assert actions.write_back(mail_account.pk) == (1, 0)
    assert "\\Flagged" in srv.server_flags(dovecot, imap_user)[message.uid]
    assert actions.write_back(mail_account.pk) == (0, 0)  # and the lock was given back
