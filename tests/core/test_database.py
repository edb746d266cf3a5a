"""The database backend: server-side binding, with batches under PostgreSQL's parameter limit."""

import pytest
from django.db import connection
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_bulk_operations_are_batched_under_the_parameter_limit():
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    assert connection.ops.bulk_batch_size(["id"], list(range(100_000))) < 65_535
    assert connection.ops.bulk_batch_size(["a", "b", "c"], list(range(100_000))) * 3 < 65_535


def copy_inbox(user):
    """An account and its INBOX for the copy_insert tests' messages."""
    from mail.models import Folder, MailAccount

    account = MailAccount.objects.create(
        owner=user, name="Copy", email_address="a@example.test", imap_host="127.0.0.1", imap_username="a"
    )
    return account, Folder.objects.create(account=account, name="INBOX")


def test_copy_insert_stores_what_save_would_and_refuses_duplicates(alice):
    from django.db import IntegrityError, transaction

    from core.db.copy import copy_insert
    from mail.models import Message

    account, folder = copy_inbox(alice.user)
    when = timezone.now()
    messages = [
        Message(
            owner=alice.user,
            account=account,
            folder=folder,
            uidvalidity=1,
            uid=i,
            sort_date=when,
            subject=f"Grüße {i}",
            text_body="body " * 200,
            raw=b"\x00raw\xff" * 100,
            to_addresses=["x@example.test", "y@example.test"],
            references=["<a@b>"],
            parse_warnings=["odd charset"],
        )  # fmt: skip
        for i in range(1, 4)
    ]
    copy_insert(Message, messages)

    stored = {m.uid: m for m in Message.objects.filter(folder=folder)}
    assert sorted(stored) == [1, 2, 3] and not messages[0]._state.adding
    first = stored[1]
    assert first.subject == "Grüße 1" and first.text_body == "body " * 200 and first.raw == b"\x00raw\xff" * 100
    assert first.to_addresses == ["x@example.test", "y@example.test"] and first.references == ["<a@b>"]
    assert first.parse_warnings == ["odd charset"] and first.sort_date == when and first.created_at is not None
    with connection.cursor() as cursor:  # sealed in the database, as save() would have sealed it
        cursor.execute("SELECT subject FROM mail_message WHERE id = %s", [first.pk])
        assert "Grüße".encode() not in bytes(cursor.fetchone()[0])

    again = Message(owner=alice.user, account=account, folder=folder, uidvalidity=1, uid=1, sort_date=when)
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_insert(Message, [again])
    assert Message.objects.filter(folder=folder).count() == 3


def test_copy_insert_values_fills_every_other_column_as_a_new_instance_would(alice):
    """The sync's analysis rows: three columns given, the other 28 the defaults save() would store."""
    import uuid

    from accounts import keyring
    from accounts.fields import sealed_value
    from analysis.models import MessageAnalysis
    from core.db.copy import copy_insert_values
    from mail.models import Message

    account, folder = copy_inbox(alice.user)
    messages = [
        Message.objects.create(owner=alice.user, account=account, folder=folder, uid=i, sort_date=timezone.now())
        for i in range(2)
    ]
    dek = keyring.dek_for(alice.user.pk)
    rows = []
    for message in messages:
        pk = uuid.uuid4()
        summary = sealed_value(MessageAnalysis, "summary", alice.user.pk, pk, "", dek)
        rows.append({"id": pk, "owner_id": alice.user.pk, "message_id": message.pk, "state": "deferred",
                     "summary": summary})  # fmt: skip
    copy_insert_values(MessageAnalysis, rows)

    reference = MessageAnalysis(owner=alice.user, message=messages[0])
    skip = {"id", "message", "state", "summary", "queued_at"}
    for stored in MessageAnalysis.objects.filter(message__in=messages):
        assert stored.state == "deferred" and stored.summary == "" and stored.queued_at is not None
        for field in MessageAnalysis._meta.concrete_fields:
            if field.name not in skip:
                assert getattr(stored, field.attname) == getattr(reference, field.attname), field.name

    plaintext = [{"id": uuid.uuid4(), "owner_id": alice.user.pk, "message_id": messages[0].pk}]
    with pytest.raises(TypeError):  # the summary's plaintext default: no cleartext through a side door
        copy_insert_values(MessageAnalysis, plaintext)


@pytest.mark.django_db(transaction=True)
def test_copy_insert_reads_a_data_key_that_ran_out_of_the_cache_before_copying(alice):
    """A sync longer than the key's 60 s in the process's cache reads the key again while it stores a
    batch; a query made inside the open COPY would wait for the connection's lock for ever (a first
    sync hung until its 25-minute time limit this way)."""
    import threading

    from accounts import keyring
    from core.db.copy import copy_insert
    from mail.models import Message

    account, folder = copy_inbox(alice.user)
    messages = [
        Message(
            owner=alice.user,
            account=account,
            folder=folder,
            uidvalidity=1,
            uid=i,
            sort_date=timezone.now(),
            subject=f"key {i}",
        )  # fmt: skip
        for i in range(1, 3)
    ]
    keyring.forget(alice.user.pk)  # as if its time in the cache were over
    outcome = []

    def copy_in_a_thread() -> None:  # a thread of its own, so that a hang fails the test instead of hanging it
        from django.db import connection as own

        try:
            outcome.append(copy_insert(Message, messages))
        finally:
            own.close()

    copying = threading.Thread(target=copy_in_a_thread, daemon=True)
    copying.start()
    copying.join(30)
    if copying.is_alive():  # let the test database go: the stuck COPY holds its table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'COPY %%'"
            )
    assert not copying.is_alive(), "copy_insert waits for its own connection"
    assert outcome == [None]
    assert [m.subject for m in Message.objects.filter(folder=folder).order_by("uid")] == ["key 1", "key 2"]


def test_advisory_lock_is_exclusive_across_connections_and_released_at_the_end():
    import psycopg
    from django.conf import settings

    from core.db.locks import lock_key, try_advisory_lock

    key = lock_key("tests/advisory")
    assert key != lock_key("tests/other") and -(2**63) <= key < 2**63
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]) as other:
        with try_advisory_lock(key) as acquired:
            assert acquired
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0] is False
            with try_advisory_lock(key) as again:  # same session: PostgreSQL counts it, still ours
                assert again
        assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0] is True
        with try_advisory_lock(key) as taken_elsewhere:
            assert not taken_elsewhere
        other.execute("SELECT pg_advisory_unlock(%s)", [key])
