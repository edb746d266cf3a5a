"""manage.py check_deploy: OK/FAIL per line, exit 1 on any FAIL, secrets never printed."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

pytestmark = pytest.mark.django_db


def _check_deploy(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("check_deploy", *args, stdout=out, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def _line(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(name + " "))


def test_check_deploy_passes_with_the_test_settings_when_celery_is_skipped():
    code, output = _check_deploy("--skip-celery")
    assert code == 0, output
    for name in (
        "debug",
        "secret_key",
        "allowed_hosts",
        "secure_cookies",
        "sync_key",
        "database",
        "redis",
        "migrations",
    ):
        assert re.match(rf"{name}\s+OK\s+\S", _line(output, name)), output
    assert not re.search(r"^celery\s", output, re.M) and "All checks passed." in output


def test_check_deploy_fails_without_a_worker():
    code, output = _check_deploy()
    assert code == 1
    assert re.match(r"celery\s+FAIL\s+celery unreachable \(\w+\)", _line(output, "celery"))


@override_settings(
    DEBUG=True,
    SECRET_KEY="insecure-development-key-set-SECRET_KEY-in-production",
    ALLOWED_HOSTS=[],
    SESSION_COOKIE_SECURE=False,
    MAILHELPER_SYNC_KEY="",
    MAILHELPER_SYNC_KEY_FILE="",
)
def test_check_deploy_names_each_unsafe_setting():
    code, output = _check_deploy("--skip-celery")
    assert code == 1
    assert re.match(r"debug\s+FAIL\s+DEBUG is on", _line(output, "debug"))
    assert re.match(r"secret_key\s+FAIL\s+SECRET_KEY is the development default", _line(output, "secret_key"))
    assert re.match(r"allowed_hosts\s+FAIL\s+ALLOWED_HOSTS is empty", _line(output, "allowed_hosts"))
    assert re.match(r"secure_cookies\s+FAIL\s+SESSION_COOKIE_SECURE off", _line(output, "secure_cookies"))
    assert re.match(r"sync_key\s+FAIL\s+MAILHELPER_SYNC_KEY is not set", _line(output, "sync_key"))
    assert re.match(r"database\s+OK", _line(output, "database"))


@override_settings(SECRET_KEY="short", MAILHELPER_SYNC_KEY="bm90LWEta2V5")
def test_check_deploy_short_secret_and_malformed_sync_key():
    code, output = _check_deploy("--skip-celery")
    assert code == 1
    assert re.match(r"secret_key\s+FAIL\s+SECRET_KEY is too short", _line(output, "secret_key"))
    assert re.match(r"sync_key\s+FAIL\s+MAILHELPER_SYNC_KEY is not a valid sync key", _line(output, "sync_key"))
    assert "bm90LWEta2V5" not in output


def test_check_deploy_names_the_oauth_redirect_uri_to_register(settings):
    settings.MAILHELPER_OAUTH_PROVIDERS = {"google": {"client_id": "", "client_secret": ""}}
    code, output = _check_deploy("--skip-celery")
    assert code == 0 and "no OAuth2 sign-in provider configured" in _line(output, "oauth")

    settings.MAILHELPER_BASE_URL = "https://mail.example.org"
    settings.MAILHELPER_OAUTH_PROVIDERS = {
        "google": {"client_id": "g-id", "client_secret": "g-secret-value"},
        "microsoft": {"client_id": "m-id", "client_secret": "m-secret-value", "tenant": "common"},
    }
    code, output = _check_deploy("--skip-celery")
    line = _line(output, "oauth")
    assert code == 0 and "OK" in line and "Google, Microsoft" in line
    assert "https://mail.example.org/mail/oauth/callback/" in line and "secret-value" not in output

    settings.MAILHELPER_BASE_URL = "http://mail.example.org"
    code, output = _check_deploy("--skip-celery")
    assert code == 1 and "is not https" in _line(output, "oauth")

    settings.MAILHELPER_OAUTH_PROVIDERS = {"generic": {"client_id": "x", "client_secret": "y", "token_url": ""}}
    code, output = _check_deploy("--skip-celery")
    assert code == 1 and "generic have a client id but no authorize or token URL" in _line(output, "oauth")
