"""Users with a real keyring and a confirmed TOTP device, and clients logged in as them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import keyring
from accounts.models import User

DEFAULT_PASSWORD = "correct horse battery staple 42"


@dataclass
class TestUser:
    user: User
    password: str
    device: TOTPDevice | None
    recovery_codes: list[str] = field(default_factory=list)


def totp_code(device: TOTPDevice) -> str:
    """A code the device accepts now: the next unused time step within its tolerance.

    TOTPDevice refuses a code from a time step it already accepted (replay protection), so a
    second login in the same 30 seconds needs the next step's code.
    """
    device.refresh_from_db()
    t = int((time.time() - device.t0) // device.step)
    if device.last_t is not None and device.last_t >= t:
        t = device.last_t + 1
    return _totp_at(device, t)


def _totp_at(device: TOTPDevice, t: int) -> str:
    return str(hotp(device.bin_key, t, digits=device.digits)).zfill(device.digits)


def create_test_user(
    username: str = "alice", password: str = DEFAULT_PASSWORD, *, with_2fa: bool = True, strict: bool = False
) -> TestUser:
    user = User.objects.create_user(username=username, email=f"{username}@example.test", password=password)
    user.strict_mode = strict
    user.save(update_fields=["strict_mode"])
    dek = keyring.create_keyring(user, password)
    device, codes = None, []
    if with_2fa:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        codes = keyring.issue_recovery_codes(user, dek)
    if strict:
        keyring.cache_session_key(user, dek)
    return TestUser(user, password, device, codes)


def verified_client(test_user: TestUser, **client_options) -> Client:
    """A client past both login steps (the steps themselves are tested in tests/accounts).

    `client_options` go to Client(), e.g. enforce_csrf_checks=True.
    """
    client = Client(**client_options)
    client.force_login(test_user.user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = test_user.device.persistent_id
    session.save()
    return client


@pytest.fixture
def alice(db) -> TestUser:
    return create_test_user("alice")


@pytest.fixture
def bob(db) -> TestUser:
    return create_test_user("bob")


@pytest.fixture
def operator(db) -> TestUser:
    """A superuser with 2FA, for the admin."""
    op = create_test_user("operator")
    op.user.is_staff = op.user.is_superuser = True
    op.user.save()
    return op


@pytest.fixture
def alice_client(alice) -> Client:
    return verified_client(alice)
