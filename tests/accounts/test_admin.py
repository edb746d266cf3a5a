"""Operators use the admin and see no secret: no key, wrap, TOTP secret or recovery code."""

import pytest
from django.urls import reverse

from accounts.models import DataKeyWrap
from tests.plugins.accounts import verified_client

pytestmark = pytest.mark.django_db


def test_admin_pages_show_no_key_material(operator, alice):
    client = verified_client(operator)
    secrets = [alice.device.key, alice.device.key.upper(), *alice.recovery_codes]
    for wrap in DataKeyWrap.objects.filter(user=alice.user):
        secrets += [bytes(wrap.wrapped_key).hex(), bytes(wrap.wrapped_key)[13:29].hex()]
    pages = [
        reverse("admin:accounts_user_changelist"),
        reverse("admin:accounts_user_change", args=[alice.user.pk]),
        reverse("admin:accounts_datakeywrap_changelist"),
        reverse("admin:accounts_recoverydevice_changelist"),
        reverse("admin:otp_totp_totpdevice_changelist"),
        reverse("admin:otp_totp_totpdevice_change", args=[alice.device.pk]),
        reverse("admin:django_celery_beat_periodictask_changelist"),
        reverse("admin:django_celery_results_taskresult_changelist"),
    ]
    for wrap in DataKeyWrap.objects.filter(user=alice.user)[:2]:
        pages.append(reverse("admin:accounts_datakeywrap_change", args=[wrap.pk]))
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in secrets:
            assert secret not in html, f"{url} shows a secret"
    assert "alice" in client.get(reverse("admin:accounts_user_changelist")).content.decode()


def test_admin_unlock_action(operator, alice):
    from django.utils import timezone

    alice.user.locked_until = timezone.now() + timezone.timedelta(minutes=10)
    alice.user.save()
    client = verified_client(operator)
    client.post(reverse("admin:accounts_user_changelist"), {"action": "unlock", "_selected_action": [alice.user.pk]})
    alice.user.refresh_from_db()
    assert alice.user.locked_until is None


def test_admin_requires_a_verified_staff_login(alice_client, client, operator):
    assert alice_client.get(reverse("admin:index")).status_code == 302  # not staff
    client.force_login(operator.user)  # password step only
    assert client.get(reverse("admin:index")).url.startswith(reverse("accounts:2fa-verify"))
