"""The idle timeout slides on every request; an unchanged session has only its expiry moved (accounts/sessions.py)."""

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.core.cache import cache
from django.urls import reverse

from accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


def ttl_of(session_key: str) -> int:
    return cache.ttl(SessionStore.cache_key_prefix + session_key)


def test_every_page_moves_the_idle_timeout_forward(alice_client):
    key = alice_client.session.session_key
    cache.touch(SessionStore.cache_key_prefix + key, 60)  # as if the user had been idle for 29 minutes
    assert alice_client.get(reverse("mail:list")).status_code == 200
    assert ttl_of(key) > settings.SESSION_COOKIE_AGE - 10
    assert alice_client.get(reverse("mail:list")).status_code == 200  # still logged in, same session
    assert alice_client.session.session_key == key


def test_an_unchanged_session_keeps_what_a_concurrent_request_stored():
    first = SessionStore()
    first["step"] = "one"
    first.save()
    request_a = SessionStore(first.session_key)
    assert request_a["step"] == "one"  # loaded, not changed
    request_b = SessionStore(first.session_key)
    request_b["step"] = "two"
    request_b.save()
    request_a.save()  # the end of request A: it must not write its stale copy back
    assert SessionStore(first.session_key)["step"] == "two"
    assert ttl_of(first.session_key) > settings.SESSION_COOKIE_AGE - 10


def test_a_changed_session_is_saved():
    session = SessionStore()
    session["step"] = "one"
    session.save()
    again = SessionStore(session.session_key)
    again["step"] = "two"
    again.save()
    assert SessionStore(session.session_key)["step"] == "two"


def test_a_session_deleted_meanwhile_is_not_brought_back():
    session = SessionStore()
    session["step"] = "one"
    session.save()
    request = SessionStore(session.session_key)
    assert request["step"] == "one"
    SessionStore(session.session_key).delete()  # logged out in another tab
    with pytest.raises(UpdateError):
        request.save()
    assert not SessionStore().exists(session.session_key)


def test_a_request_that_logged_out_elsewhere_ends_its_session(alice_client):
    key = alice_client.session.session_key
    SessionStore(key).delete()
    response = alice_client.get(reverse("mail:list"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
