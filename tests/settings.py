"""Settings for the test suite: the real settings, pointed at a Redis database of its own.

Defaults are set before importing the real settings so that a developer's running instance
(Redis database 0) is never flushed by the tests. Celery workers started by the tests use this
module too, so they share the test database and broker.
"""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# The broker gets a database of its own: tests flush the cache database between tests.
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production-use-0123456789")
# A fixed, test-only sync key (32 bytes, urlsafe base64).
os.environ.setdefault("MAILHELPER_SYNC_KEY", "dGVzdHMtb25seS1zeW5jLWtleS0zMi1ieXRlcyEhISE=")
os.environ.setdefault("MAILHELPER_KDF_ITERATIONS", "1")
os.environ.setdefault("MAILHELPER_KDF_MEMORY_KIB", "1024")
os.environ.setdefault("MAILHELPER_ENV_FILE", "/nonexistent/.env")
# Tests register users freely; tests/accounts/test_invitations.py switches to the other modes.
os.environ.setdefault("MAILHELPER_REGISTRATION", "open")

from mailhelper.settings import *  # noqa: E402,F403
from mailhelper.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "tests.encryption_app"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "accounts.hashers.WerkzeugPasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_AUTOREFRESH = True
# The suite's own servers (Dovecot, the SMTP sink, the fake LLM servers) listen on loopback, which the
# outbound policy refuses by default; tests/core/test_outbound.py takes this away to test the default.
MAILHELPER_OUTBOUND_ALLOW = ["127.0.0.1"]
