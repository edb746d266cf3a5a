"""Registration modes (open, invite, closed) and invitations: links, invited addresses, single use."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts import invitations
from accounts.models import AuditEvent, DataKeyWrap, Invitation, User
from tests.plugins.accounts import DEFAULT_PASSWORD, verified_client
from tests.plugins.celery_worker import ROOT, service_env

pytestmark = pytest.mark.django_db

invite_mode = override_settings(MAILHELPER_REGISTRATION="invite")
REGISTER = reverse("accounts:register")


def sign_up(client, url=REGISTER, username="carol", email="carol@example.test"):
    data = {"username": username, "email": email, "password1": DEFAULT_PASSWORD, "password2": DEFAULT_PASSWORD}
    return client.post(url, data)


def invite_url(token: str) -> str:
    return f"{REGISTER}?invite={token}"


def shows_form(response) -> bool:
    return 'name="password1"' in response.content.decode()


def assert_refused(client, url: str, says: str, **sign_up_data) -> None:
    """The page at `url` says `says` and shows no form, and a sign-up posted there is refused."""
    page = client.get(url)
    assert says in page.content.decode() and not shows_form(page)
    assert sign_up(client, url, **sign_up_data).status_code == 403


# ---- The three modes -------------------------------------------------------------------------------


@override_settings(MAILHELPER_REGISTRATION="open")
def test_open_mode_registers_anyone_as_before(client):
    assert shows_form(client.get(REGISTER))
    response = sign_up(client)
    assert response.status_code == 302 and response.url == reverse("accounts:2fa-setup")
    assert User.objects.filter(username="carol").exists()


@override_settings(MAILHELPER_REGISTRATION="closed")
def test_closed_mode_says_the_administrator_creates_accounts_and_refuses_posts(client):
    page = client.get(REGISTER)
    assert page.status_code == 200 and "created by the administrator" in page.content.decode()
    assert not shows_form(page)
    invitation, token = invitations.create("carol@example.test")  # not even an invitation opens it
    for url in (REGISTER, invite_url(token), f"{REGISTER}?address=1"):
        response = sign_up(client, url)
        assert response.status_code == 403 and not shows_form(response)
    assert not User.objects.filter(username="carol").exists()
    assert "Create an account" not in client.get(reverse("accounts:login")).content.decode()


@invite_mode
def test_invite_mode_without_a_token_says_sign_up_is_by_invitation_and_shows_no_form(client):
    page = client.get(REGISTER)
    html = page.content.decode()
    assert page.status_code == 200 and "Sign-up is by invitation" in html and not shows_form(page)
    assert '<form method="post"' not in html
    response = sign_up(client)
    assert response.status_code == 403 and not User.objects.filter(username="carol").exists()
    assert "Create an account" in client.get(reverse("accounts:login")).content.decode()


def test_the_default_of_a_new_installation_is_invite(tmp_path):
    """mailhelper/settings.py without the variable (tests/settings.py sets "open" for the suite)."""
    env = {k: v for k, v in service_env().items() if k != "MAILHELPER_REGISTRATION"}
    env.update(DJANGO_SETTINGS_MODULE="mailhelper.settings", DEBUG="1", MAILHELPER_ENV_FILE=str(tmp_path / "none"))
    code = "import django; django.setup(); from django.conf import settings; print(settings.MAILHELPER_REGISTRATION)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "invite", result.stderr
    env["MAILHELPER_REGISTRATION"] = "invited"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "MAILHELPER_REGISTRATION must be one of open, invite, closed" in result.stderr


# ---- Links ----------------------------------------------------------------------------------------


@invite_mode
def test_a_link_shows_the_form_with_the_invited_address_fixed_and_is_used_once(client, operator):
    invitation, token = invitations.create("Carol@Example.TEST", invited_by=operator.user)
    assert invitation.email == "carol@example.test"
    assert invitation.token_hash == invitations.hash_token(token) and token not in str(invitation.__dict__)

    page = client.get(invite_url(token))
    assert shows_form(page) and "carol@example.test" in page.content.decode()
    assert re.search(r'<input[^>]*name="email"[^>]*disabled', page.content.decode())
    # The address comes from the invitation whatever the form sends.
    response = sign_up(client, invite_url(token), email="mallory@example.test")
    assert response.status_code == 302 and response.url == reverse("accounts:2fa-setup")

    user = User.objects.get(username="carol")
    assert user.email == "carol@example.test"
    assert DataKeyWrap.objects.filter(user=user, kind="password").exists()
    invitation.refresh_from_db()
    assert invitation.used_by == user and invitation.used_at is not None
    event = AuditEvent.objects.get(user=user, kind=AuditEvent.Kind.INVITATION_REDEEMED)
    assert event.detail == {"how": "link"}

    # Used: a second visitor with the same link gets no form and no account.
    assert_refused(client.__class__(), invite_url(token), "already been used", username="dave")
    assert not User.objects.filter(username="dave").exists()


@invite_mode
def test_expired_and_forged_tokens_are_refused(client):
    expired, expired_token = invitations.create("old@example.test")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _, real_token = invitations.create("real@example.test")
    forged = real_token[:-2] + ("AA" if not real_token.endswith("AA") else "BB")

    assert_refused(client, invite_url(expired_token), "has expired", email="old@example.test")
    for token in (forged, "x", invitations.hash_token(real_token)):  # the stored hash is no token either
        assert_refused(client, invite_url(token), "not valid", email="real@example.test")
    assert not User.objects.filter(username="carol").exists()


@invite_mode
def test_an_invitation_expiring_between_form_and_post_rolls_the_registration_back(client):
    invitation, token = invitations.create("carol@example.test")
    form_seen = invitations.by_token(token)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(invitations.InvitationUsed):
        invitations.redeem(form_seen, lambda: pytest.fail("no account may be made"))
    assert not User.objects.filter(username="carol").exists()


# ---- Address-only invitations ------------------------------------------------------------------


@invite_mode
def test_an_invited_address_may_register_and_no_other(client):
    invitations.create("Carol@example.test", with_link=False)
    link_invitation, _ = invitations.create("dave@example.test")

    page = client.get(f"{REGISTER}?address=1")
    assert shows_form(page) and "the administrator invited" in page.content.decode()
    refused = sign_up(client, f"{REGISTER}?address=1", username="eve", email="eve@example.test")
    assert "has not been invited" in refused.content.decode()
    # A link's address is not enough without the link.
    refused = sign_up(client, f"{REGISTER}?address=1", username="dave", email="dave@example.test")
    assert "has not been invited" in refused.content.decode()
    assert not User.objects.filter(username__in=["eve", "dave"]).exists()

    response = sign_up(client, f"{REGISTER}?address=1", email="CAROL@example.test")
    assert response.status_code == 302
    user = User.objects.get(username="carol")
    invitation = Invitation.objects.get(email="carol@example.test")
    assert invitation.used_by == user and invitation.token_hash is None
    assert AuditEvent.objects.get(user=user, kind="invitation_redeemed").detail == {"how": "address"}
    link_invitation.refresh_from_db()
    assert link_invitation.used_at is None


# ---- Two sign-ups with one invitation --------------------------------------------------------------


def test_a_second_redemption_updates_nothing(db):
    invitation, _ = invitations.create("carol@example.test")
    first = invitations.redeem(invitation, lambda: User.objects.create_user("carol", "carol@example.test"))
    with pytest.raises(invitations.InvitationUsed):
        invitations.redeem(invitation, lambda: User.objects.create_user("dave", "dave@example.test"))
    assert list(User.objects.filter(username__in=["carol", "dave"])) == [first]


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_redemptions_of_one_invitation_make_exactly_one_account():
    """Two registrations in two connections: the second UPDATE waits for the first's commit, then finds
    the invitation used. (Distinct user names and addresses, so only the invitation can stop one.)"""
    invitation, _ = invitations.create("carol@example.test")
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def register(username: str) -> None:
        def make_user():
            user = User.objects.create_user(username, f"{username}@example.test")
            time.sleep(0.3)  # keep the transaction (and the invitation's row lock) open
            return user

        try:
            start.wait()
            with transaction.atomic():
                invitations.redeem(invitation, make_user)
            outcomes[username] = "registered"
        except invitations.InvitationUsed:
            outcomes[username] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(name,)) for name in ("carol", "dave")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(outcomes.values()) == ["refused", "registered"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "registered")
    assert list(User.objects.values_list("username", flat=True)) == [winner]
    invitation.refresh_from_db()
    assert invitation.used_by.username == winner


# ---- manage.py invite ---------------------------------------------------------------------------


@invite_mode
@override_settings(MAILHELPER_BASE_URL="https://mail.example.org/")
def test_the_invite_command_prints_a_working_link(client):
    out = StringIO()
    call_command("invite", "New@Example.test", "--days", "3", stdout=out)
    link = next(line for line in out.getvalue().splitlines() if line.startswith("https://"))
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == "https://mail.example.org" and parts.path == REGISTER
    invitation = Invitation.objects.get(email="new@example.test")
    assert timedelta(days=3) - timedelta(minutes=1) < invitation.expires_at - timezone.now() <= timedelta(days=3)
    assert invitation.token_hash not in out.getvalue()

    page = client.get(f"{parts.path}?{parts.query}")
    assert shows_form(page) and "new@example.test" in page.content.decode()
    assert sign_up(client, f"{parts.path}?{parts.query}", username="newbie").status_code == 302
    assert User.objects.get(username="newbie").email == "new@example.test"


def test_the_invite_command_makes_address_only_invitations_and_refuses_bad_addresses(alice):
    out = StringIO()
    call_command("invite", "ann@example.test", "--address-only", stdout=out, stderr=StringIO())
    assert "address only" in out.getvalue() and "http" not in out.getvalue()
    assert Invitation.objects.get(email="ann@example.test").token_hash is None
    with pytest.raises(CommandError, match="already exists"):
        call_command("invite", "alice@example.test", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="at least one day"):
        call_command("invite", "bo@example.test", "--days", "0", stdout=StringIO(), stderr=StringIO())
    assert not Invitation.objects.filter(email__in=["alice@example.test", "bo@example.test"]).exists()


def test_the_invite_command_exits_non_zero_for_an_invalid_address():
    result = subprocess.run(
        [sys.executable, "manage.py", "invite", "not-an-address"],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "valid email address" in result.stderr, result.stderr
    assert result.stdout == ""


# ---- Admin -----------------------------------------------------------------------------------------


def test_the_admin_shows_a_new_link_once_and_never_the_token_hash(operator):
    client = verified_client(operator)
    response = client.post(
        reverse("admin:accounts_invitation_add"), {"email": "Fay@Example.test", "days": "5", "with_link": "on"}
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    invitation = Invitation.objects.get(email="fay@example.test")
    assert invitation.invited_by == operator.user
    link = re.search(r'value="(http[^"]+)"', response.content.decode()).group(1).replace("&amp;", "&")
    token = link.split("invite=", 1)[1]
    assert invitations.hash_token(token) == invitation.token_hash
    assert "no-store" in response["Cache-Control"]

    invitations.create("gus@example.test", with_link=False)
    pages = [
        reverse("admin:accounts_invitation_changelist"),
        reverse("admin:accounts_invitation_change", args=[invitation.pk]),
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert "fay@example.test" in html
        assert invitation.token_hash not in html and token not in html
    listing = client.get(pages[0]).content.decode()
    assert "gus@example.test" in listing and "address only" in listing

    client.post(pages[0], {"action": "withdraw", "_selected_action": [invitation.pk]})
    invitation.refresh_from_db()
    assert invitation.state == "expired"


def test_the_admin_refuses_an_invalid_address(operator):
    client = verified_client(operator)
    response = client.post(reverse("admin:accounts_invitation_add"), {"email": "nope", "days": "5"})
    assert response.status_code == 200 and "valid email address" in response.content.decode()
    assert not Invitation.objects.exists()
