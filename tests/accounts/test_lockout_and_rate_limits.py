"""Lockout after repeated failures (password and second factor) and per-IP/per-user rate limits."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from tests.plugins.accounts import totp_code

pytestmark = pytest.mark.django_db


def post_login(client, username, password):
    return client.post(reverse("accounts:login"), {"username": username, "password": password})


def test_five_failed_passwords_lock_the_account_until_the_window_passes(client, alice):
    for _ in range(4):
        response = post_login(client, "alice", "wrong password")
        assert response.status_code == 200 and "Wrong username or password" in response.content.decode()
    fifth = post_login(client, "alice", "wrong password")
    assert fifth.status_code == 403 and "locked" in fifth.content.decode()

    # Even the right password is refused while locked, with the time left.
    locked = post_login(client, "alice", alice.password)
    assert locked.status_code == 403 and "15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session

    # The window passes (moved back in time rather than sleeping 15 minutes).
    User.objects.filter(pk=alice.user.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    response = post_login(client, "alice", alice.password)
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:2fa-verify"))
    client.post(response.url, {"token": totp_code(alice.device)})
    alice.user.refresh_from_db()
    assert alice.user.failed_login_count == 0 and alice.user.locked_until is None


def test_failed_second_factor_counts_towards_lockout(client, alice):
    step1 = post_login(client, "alice", alice.password)
    for _ in range(4):
        page = client.post(step1.url, {"token": "000000"}).content.decode()
        assert "not valid" in page or "wait a few seconds" in page  # django-otp throttles too
    fifth = client.post(step1.url, {"token": "000000"})
    assert fifth.status_code == 302 and fifth.url == reverse("accounts:login")
    alice.user.refresh_from_db()
    assert alice.user.is_locked()
    assert client.get(reverse("home")).url.startswith(reverse("accounts:login"))


def test_unknown_usernames_get_the_same_message(client):
    response = post_login(client, "nobody", "whatever")
    assert response.status_code == 200 and "Wrong username or password" in response.content.decode()


@override_settings(MAILHELPER_RATE_LOGIN="3/m")
def test_login_is_rate_limited_per_ip_with_429(client):
    statuses = [post_login(client, f"user{i}", "x").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert "Too many attempts" in post_login(client, "other", "x").content.decode()


@override_settings(MAILHELPER_RATE_LOGIN_USER="2/m")
def test_login_is_rate_limited_per_username_across_ips(client, db):
    statuses = [
        client.post(
            reverse("accounts:login"), {"username": "target", "password": "x"}, REMOTE_ADDR=f"10.0.0.{i}"
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


@override_settings(MAILHELPER_RATE_REGISTER="1/h")
def test_registration_is_rate_limited(client, db):
    data = {"username": "x1", "email": "x1@example.test", "password1": "a", "password2": "b"}
    assert client.post(reverse("accounts:register"), data).status_code == 200
    assert client.post(reverse("accounts:register"), data).status_code == 429
