"""Registration, mandatory TOTP enrolment, login in two steps, logout."""

import base64
import re
import time

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import DataKeyWrap, User
from tests.plugins.accounts import DEFAULT_PASSWORD, totp_code

pytestmark = pytest.mark.django_db


def register(client, username="carol", password=DEFAULT_PASSWORD):
    return client.post(
        reverse("accounts:register"),
        {
            "username": username,
            "email": f"{username}@example.test",
            "password1": password,
            "password2": password,
        },
    )


def login(client, username, password, next_url=""):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("accounts:login"), data)


def test_register_enrol_logout_and_log_in_with_totp(client):
    response = register(client)
    assert response.status_code == 302 and response.url == reverse("accounts:2fa-setup")
    user = User.objects.get(username="carol")
    assert set(DataKeyWrap.objects.filter(user=user).values_list("kind", flat=True)) == {"password", "sync"}

    # Any page before enrolment sends the user to the enrolment page.
    assert client.get(reverse("home")).url.startswith(reverse("accounts:2fa-setup"))

    page = client.get(reverse("accounts:2fa-setup"))
    html = page.content.decode()
    assert "<svg" in html  # QR code inline
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    shown_secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    assert base64.b32decode(shown_secret) == device.bin_key

    wrong = client.post(reverse("accounts:2fa-setup"), {"token": "000000"})
    assert "not valid" in wrong.content.decode()
    # After a wrong code the device throttles for a second (django-otp), then accepts the right one.
    throttled = client.post(reverse("accounts:2fa-setup"), {"token": totp_code(device)})
    assert "wait a few seconds" in throttled.content.decode()
    time.sleep(1.1)
    codes_page = client.post(reverse("accounts:2fa-setup"), {"token": totp_code(device)})
    assert codes_page.status_code == 200
    codes = re.findall(r"<code>([A-Z0-9-]{19})</code>", codes_page.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'download="mailhelper-recovery-codes.txt"' in codes_page.content.decode()
    assert client.get(reverse("home")).status_code == 200

    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get(reverse("home")).url.startswith(reverse("accounts:login"))

    step1 = login(client, "carol", DEFAULT_PASSWORD, next_url="/accounts/settings/")
    assert step1.url.startswith(reverse("accounts:2fa-verify"))
    # Password alone opens nothing.
    for name in ("home", "accounts:settings", "admin:index"):
        assert client.get(reverse(name)).url.startswith(reverse("accounts:2fa-verify"))
    step2 = client.post(step1.url, {"token": totp_code(device), "next": "/accounts/settings/"})
    assert step2.status_code == 302 and step2.url == "/accounts/settings/"
    assert client.get(reverse("accounts:settings")).status_code == 200


def test_registration_applies_password_validators_and_unique_email(client, alice):
    response = register(client, "dave", "password")
    assert response.status_code == 200
    assert "too common" in response.content.decode() or "too short" in response.content.decode()
    response = client.post(
        reverse("accounts:register"),
        {
            "username": "eve",
            "email": "alice@example.test",
            "password1": DEFAULT_PASSWORD,
            "password2": DEFAULT_PASSWORD,
        },
    )
    assert "already exists" in response.content.decode()
    assert not User.objects.filter(username__in=["dave", "eve"]).exists()


def test_anonymous_users_see_only_public_pages(client):
    for name in ("home", "accounts:settings", "accounts:password-change", "admin:index"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:login")), name
    assert client.get(reverse("accounts:login")).status_code == 200
    assert client.get(reverse("accounts:register")).status_code == 200
    # The admin's own login page would skip the second factor: it redirects to ours.
    assert client.get("/admin/login/").url.startswith(reverse("accounts:login"))


def test_next_parameter_cannot_redirect_off_site(client, alice):
    step1 = login(client, "alice", alice.password, next_url="https://evil.example/")
    step2 = client.post(step1.url, {"token": totp_code(alice.device), "next": "https://evil.example/"})
    assert step2.url == reverse("home")


def test_logout_requires_post(alice_client):
    assert alice_client.get(reverse("accounts:logout")).status_code == 405
    assert alice_client.get(reverse("home")).status_code == 200


def test_session_cookie_is_secure_httponly_and_idle_timeout_is_30_minutes(client, alice):
    from django.conf import settings
    from django_redis import get_redis_connection

    step1 = login(client, "alice", alice.password)
    cookie = step1.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    client.post(step1.url, {"token": totp_code(alice.device)})
    keys = get_redis_connection("default").keys("*django.contrib.sessions.cache*")
    assert keys, "sessions live in Redis"
    ttl = get_redis_connection("default").ttl(keys[0])
    assert 0 < ttl <= 30 * 60
