"""Fixtures on real services: PostgreSQL (pytest-django), Redis, Celery workers, Dovecot and Cyrus, SMTP."""

from __future__ import annotations

import contextlib

import pytest
from django.core.cache import cache

pytest_plugins = [
    "tests.plugins.accounts",
    "tests.plugins.celery_worker",
    "tests.plugins.mailservers",
    "tests.plugins.imap_servers",
    "tests.plugins.mail",
    "tests.plugins.llm_servers",
    "tests.plugins.web_servers",
    "tests.plugins.oauth_server",
    "tests.plugins.demo",
]


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty Redis test database (sessions, rate limits, key cache)."""
    from accounts import keyring

    with contextlib.suppress(Exception):  # a test that stops Redis must not break the next one's setup
        cache.clear()
    keyring.forget_all()
    yield
    keyring.forget_all()


@pytest.fixture
def default_policy(settings):
    """The outbound policy as shipped: tests/settings.py's allow list for the suite's loopback servers removed."""
    settings.MAILHELPER_OUTBOUND_ALLOW = []
    settings.MAILHELPER_ALLOW_PRIVATE_HOSTS = False
    return settings


def pytest_collection_modifyitems(config, items):
    """Real-browser tests run last: they are the slowest and need everything else working."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
