"""Recovery codes (login, single use, regeneration, password reset) and password change."""

import re

import pytest
from django.urls import reverse

from accounts import keyring
from accounts.models import DataKeyWrap
from tests.encryption_app.models import Note
from tests.plugins.accounts import totp_code

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a completely new passphrase 7"


def password_step(client, test_user, password=None):
    return client.post(
        reverse("accounts:login"), {"username": test_user.user.username, "password": password or test_user.password}
    )


def test_recovery_code_logs_in_once(client, alice):
    password_step(client, alice)
    code = alice.recovery_codes[0]
    response = client.post(reverse("accounts:2fa-recovery"), {"code": code.lower().replace("-", " ")}, follow=True)
    assert response.redirect_chain == [(reverse("home"), 302)]
    assert "9 left" in response.content.decode()
    client.post(reverse("accounts:logout"))

    password_step(client, alice)
    reused = client.post(reverse("accounts:2fa-recovery"), {"code": code})
    assert reused.status_code == 200 and "already used" in reused.content.decode()
    assert client.get(reverse("home")).status_code == 302
    assert DataKeyWrap.objects.filter(user=alice.user, kind="recovery", used_at__isnull=True).count() == 9


def test_one_users_code_does_not_work_for_another(client, alice, bob):
    password_step(client, bob)
    response = client.post(reverse("accounts:2fa-recovery"), {"code": alice.recovery_codes[0]})
    assert "not valid" in response.content.decode()
    assert DataKeyWrap.objects.filter(user=alice.user, kind="recovery", used_at__isnull=True).count() == 10


def test_password_change_keeps_encrypted_values_readable(alice_client, alice):
    note = Note.objects.create(owner=alice.user, body="still readable")
    dek_before = keyring.unwrap_with_password(alice.user, alice.password)
    wrong = alice_client.post(
        reverse("accounts:password-change"),
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert "not correct" in wrong.content.decode()
    response = alice_client.post(
        reverse("accounts:password-change"),
        {"old_password": alice.password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert alice_client.get(reverse("home")).status_code == 200  # session survives the change
    alice.user.refresh_from_db()
    assert alice.user.check_password(NEW_PASSWORD)
    assert keyring.unwrap_with_password(alice.user, NEW_PASSWORD) == dek_before
    with pytest.raises(keyring.crypto.DecryptionError):
        keyring.unwrap_with_password(alice.user, alice.password)
    keyring.forget_all()
    assert Note.objects.get(pk=note.pk).body == "still readable"


def test_password_reset_with_recovery_code_keeps_data_and_uses_the_code(client, alice):
    note = Note.objects.create(owner=alice.user, body="survives a reset")
    dek_before = keyring.unwrap_with_password(alice.user, alice.password)
    data = {
        "username": "alice",
        "code": alice.recovery_codes[3],
        "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    }
    response = client.post(reverse("accounts:recover"), data)
    assert response.status_code == 302 and response.url == reverse("accounts:login")
    assert keyring.unwrap_with_password(alice.user, NEW_PASSWORD) == dek_before
    again = client.post(
        reverse("accounts:recover"), {**data, "new_password1": "x" * 12 + "Q1", "new_password2": "x" * 12 + "Q1"}
    )
    assert "do not match an unused code" in again.content.decode()

    # The new password works, with the TOTP second step.
    step1 = password_step(client, alice, NEW_PASSWORD)
    client.post(step1.url, {"token": totp_code(alice.device)})
    assert client.get(reverse("home")).status_code == 200
    keyring.forget_all()
    assert Note.objects.get(pk=note.pk).body == "survives a reset"


def test_regenerating_codes_needs_the_password_and_invalidates_old_codes(alice_client, alice):
    refused = alice_client.post(reverse("accounts:regenerate-codes"), {"password": "wrong"})
    assert "not correct" in refused.content.decode()
    page = alice_client.post(reverse("accounts:regenerate-codes"), {"password": alice.password})
    new_codes = re.findall(r"<code>([A-Z0-9-]{19})</code>", page.content.decode())
    assert len(new_codes) == 10 and not set(new_codes) & set(alice.recovery_codes)
    assert keyring.redeem_recovery_code(alice.user, alice.recovery_codes[0]) is None
    assert keyring.redeem_recovery_code(alice.user, new_codes[0]) == keyring.dek_for(alice.user.pk)


def test_strict_mode_page_needs_the_password(alice_client, alice):
    refused = alice_client.post(reverse("accounts:strict-mode"), {"password": "wrong", "strict_mode": "on"})
    assert "not correct" in refused.content.decode()
    alice_client.post(reverse("accounts:strict-mode"), {"password": alice.password, "strict_mode": "on"})
    alice.user.refresh_from_db()
    assert alice.user.strict_mode
    assert not DataKeyWrap.objects.filter(user=alice.user, kind="sync").exists()
    alice_client.post(reverse("accounts:logout"))
    assert keyring.is_locked(alice.user.pk)
