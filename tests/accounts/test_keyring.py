"""The keyring: values bound to owner/model/field/row, wraps, strict mode, the sync key."""

import io
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from accounts import crypto, keyring
from accounts.fields import Sealed
from accounts.models import DataKeyWrap
from tests.encryption_app.models import Note
from tests.plugins.accounts import create_test_user

pytestmark = pytest.mark.django_db

SECRET_TEXT = "Quarterly numbers: 4711 €, do not forward"


def raw_column(note: Note, column: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM encryption_app_note WHERE id = %s", [note.pk])
        return bytes(cursor.fetchone()[0])


def test_values_are_stored_encrypted_and_read_back_for_the_owner(alice):
    note = Note.objects.create(owner=alice.user, title="t", body=SECRET_TEXT, attachment=b"%PDF-1.7 bytes")
    stored = raw_column(note, "body")
    assert SECRET_TEXT.encode() not in stored and stored[0] == crypto.FORMAT_VERSION
    assert raw_column(note, "attachment") != b"%PDF-1.7 bytes"
    again = Note.objects.get(pk=note.pk)
    assert isinstance(again.__dict__["body"], Sealed)  # not decrypted until read
    assert again.body == SECRET_TEXT and again.attachment == b"%PDF-1.7 bytes"
    # Two encryptions of the same text differ (fresh nonce).
    other = Note.objects.create(owner=alice.user, body=SECRET_TEXT)
    assert raw_column(other, "body") != stored


def test_a_value_cannot_be_read_as_another_user_or_moved_to_another_row_or_field(alice, bob):
    note_a = Note.objects.create(owner=alice.user, body=SECRET_TEXT)
    note_a2 = Note.objects.create(owner=alice.user, body="other")
    note_b = Note.objects.create(owner=bob.user, body="bob's")
    ciphertext = raw_column(note_a, "body")

    def copy_into(target: Note, column: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE encryption_app_note SET {column} = %s WHERE id = %s", [ciphertext, target.pk])

    copy_into(note_b, "body")  # another user's row
    with pytest.raises(crypto.DecryptionError):
        _ = Note.objects.get(pk=note_b.pk).body
    copy_into(note_a2, "body")  # same owner, another row
    with pytest.raises(crypto.DecryptionError):
        _ = Note.objects.get(pk=note_a2.pk).body
    copy_into(note_a, "attachment")  # same row, another field
    with pytest.raises(crypto.DecryptionError):
        _ = Note.objects.get(pk=note_a.pk).attachment
    # Changing the owner without re-encrypting fails too.
    Note.objects.filter(pk=note_a.pk).update(owner=bob.user)
    with pytest.raises(crypto.DecryptionError) as excinfo:
        _ = Note.objects.get(pk=note_a.pk).body
    assert SECRET_TEXT not in str(excinfo.value)


def test_plaintext_cannot_reach_the_database_through_update_or_lookups(alice):
    note = Note.objects.create(owner=alice.user, body=SECRET_TEXT)
    with pytest.raises(TypeError, match="encrypted"):
        Note.objects.filter(pk=note.pk).update(body="cleartext")
    with pytest.raises(TypeError, match="encrypted"):
        list(Note.objects.filter(body=SECRET_TEXT))
    note.body = "changed"
    with pytest.raises(TypeError, match="encrypted"):
        Note.objects.bulk_update([note], ["body"])


def test_password_and_sync_wraps_open_the_same_key(alice):
    via_password = keyring.unwrap_with_password(alice.user, alice.password)
    keyring.forget_all()
    assert keyring.dek_for(alice.user.pk) == via_password
    with pytest.raises(crypto.DecryptionError):
        keyring.unwrap_with_password(alice.user, "not the password")
    wrap = DataKeyWrap.objects.get(user=alice.user, kind="password")
    assert wrap.params["kdf"] == "argon2id" and {"salt", "iterations", "memory_kib", "lanes"} <= set(wrap.params)


def test_wraps_are_bound_to_their_user(alice, bob):
    # Give bob alice's sync wrap: it must not open as bob's key.
    alice_wrap = DataKeyWrap.objects.get(user=alice.user, kind="sync")
    DataKeyWrap.objects.filter(user=bob.user, kind="sync").update(wrapped_key=alice_wrap.wrapped_key)
    keyring.forget_all()
    with pytest.raises(crypto.DecryptionError):
        keyring.dek_for(bob.user.pk)


def test_strict_mode_keeps_no_server_wrap_and_locks_after_logout(db):
    carol = create_test_user("carol", strict=True)
    DataKeyWrap.objects.filter(user=carol.user, kind="sync").delete()  # as set_strict_mode does
    note = Note.objects.create(owner=carol.user, body=SECRET_TEXT)  # key cached at "login"
    keyring.drop_session_key(carol.user)  # logout
    assert keyring.is_locked(carol.user.pk)
    with pytest.raises(keyring.KeyringLocked, match="log in to resume"):
        _ = Note.objects.get(pk=note.pk).body
    keyring.on_password_verified(carol.user, carol.password)  # next login
    assert Note.objects.get(pk=note.pk).body == SECRET_TEXT


def test_turning_strict_mode_on_and_off(alice):
    note = Note.objects.create(owner=alice.user, body=SECRET_TEXT)
    keyring.set_strict_mode(alice.user, True, alice.password)
    assert not DataKeyWrap.objects.filter(user=alice.user, kind="sync").exists()
    assert Note.objects.get(pk=note.pk).body == SECRET_TEXT  # still logged in
    keyring.drop_session_key(alice.user)
    assert keyring.is_locked(alice.user.pk)
    keyring.set_strict_mode(alice.user, False, alice.password)
    keyring.forget_all()
    assert DataKeyWrap.objects.filter(user=alice.user, kind="sync").exists()
    assert Note.objects.get(pk=note.pk).body == SECRET_TEXT


def test_admin_set_password_heals_the_password_wrap_at_next_login(alice):
    note = Note.objects.create(owner=alice.user, body=SECRET_TEXT)
    alice.user.set_password("operator chosen password 9")
    alice.user.save()
    keyring.on_password_verified(alice.user, "operator chosen password 9")
    assert keyring.unwrap_with_password(alice.user, "operator chosen password 9") == keyring.dek_for(alice.user.pk)
    assert Note.objects.get(pk=note.pk).body == SECRET_TEXT


@override_settings(MAILHELPER_SYNC_KEY="", MAILHELPER_SYNC_KEY_FILE="")
def test_missing_sync_key_names_the_variable():
    with pytest.raises(keyring.SyncKeyError, match="MAILHELPER_SYNC_KEY is not set"):
        keyring.load_sync_key()


@override_settings(MAILHELPER_SYNC_KEY="too-short")
def test_malformed_sync_key_names_the_variable():
    with pytest.raises(keyring.SyncKeyError, match="MAILHELPER_SYNC_KEY is not a valid sync key"):
        keyring.load_sync_key()


def test_sync_key_file_is_read_and_a_missing_file_is_named(tmp_path, settings):
    key_file = tmp_path / "sync.key"
    key_file.write_text(keyring.new_sync_key_text() + "\n")
    settings.MAILHELPER_SYNC_KEY = ""
    settings.MAILHELPER_SYNC_KEY_FILE = str(key_file)
    assert len(keyring.load_sync_key()) == 32
    settings.MAILHELPER_SYNC_KEY_FILE = str(tmp_path / "absent.key")
    with pytest.raises(keyring.SyncKeyError, match="MAILHELPER_SYNC_KEY_FILE"):
        keyring.load_sync_key()


def test_a_different_sync_key_is_refused_at_startup(alice, settings):
    keyring.check_sync_key_at_startup()  # the configured key passes
    settings.MAILHELPER_SYNC_KEY = keyring.new_sync_key_text()
    with pytest.raises(keyring.SyncKeyError, match="not the key that wrapped"):
        keyring.check_sync_key_at_startup()


def test_manage_check_reports_a_missing_sync_key(settings):
    settings.MAILHELPER_SYNC_KEY = ""
    settings.MAILHELPER_SYNC_KEY_FILE = ""
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match="MAILHELPER_SYNC_KEY"):
        call_command("check")


def test_generate_and_rotate_sync_key_rewrap_without_touching_content(alice, bob, tmp_path, settings):
    notes = {u.user.pk: Note.objects.create(owner=u.user, body=f"for {u.user.username}") for u in (alice, bob)}
    before = {pk: raw_column(n, "body") for pk, n in notes.items()}
    out = io.StringIO()
    call_command("generate_sync_key", stdout=out)
    new_key_text = out.getvalue().strip()
    assert len(crypto.b64d(new_key_text)) == 32
    key_file = tmp_path / "new.key"
    key_file.write_text(new_key_text)

    out = io.StringIO()
    call_command("rotate_sync_key", "--new-key-file", str(key_file), stdout=out)
    assert "Rotated 2" in out.getvalue()
    with pytest.raises(CommandError, match="in use"):
        settings.MAILHELPER_SYNC_KEY = new_key_text
        call_command("rotate_sync_key", "--new-key-file", str(key_file))

    keyring.forget_all()
    keyring.check_sync_key_at_startup()  # the new key matches the stored wraps
    for pk, note in notes.items():
        assert raw_column(note, "body") == before[pk]  # content untouched
        assert Note.objects.get(pk=note.pk).body.startswith("for ")
    assert set(DataKeyWrap.objects.filter(kind="sync").values_list("key_id", flat=True)) == {
        crypto.key_id(crypto.b64d(new_key_text))
    }


def test_compressed_values_round_trip_and_are_authenticated():
    key, aad = crypto.new_key(), b"owner|model|field|row"
    text = ("Dear team, the quarterly report is attached. " * 200).encode()
    sealed = crypto.seal(key, text, aad, compress=True)
    assert sealed[0] == crypto.FORMAT_ZSTD and len(sealed) < len(text) / 5
    assert crypto.open_sealed(key, sealed, aad) == text
    tampered = bytes([crypto.FORMAT_VERSION]) + sealed[1:]  # claim "not compressed"
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(key, tampered, aad)
    random_bytes = os.urandom(4096)  # incompressible: stored as is
    assert crypto.seal(key, random_bytes, aad, compress=True)[0] == crypto.FORMAT_VERSION
