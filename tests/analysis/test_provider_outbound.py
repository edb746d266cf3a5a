"""Provider HTTP connects only where core/outbound.py allows, and follows no redirect.

Against the fake LLM server on loopback (tests/plugins/llm_servers.py) and a small redirecting server
next to it. The default policy (no allow list) refuses loopback like our Redis and cloud metadata.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from django.urls import reverse

from analysis.models import ProviderSettings
from analysis.providers import ProviderHTTPError, ProviderRefused, get_provider
from core import outbound


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with the server's `answer` (status, Location) and records the path."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        status, location = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.hits, server.answer = [], (200, "")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: ThreadingHTTPServer, path: str = "/") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.mark.parametrize("kind", ["ollama", "openai", "anthropic"])
def test_loopback_redis_and_metadata_are_refused_with_the_policy_sentence_only(default_policy, fake_llm, kind):
    redis = urlsplit(default_policy.REDIS_URL)
    for base_url in (fake_llm.base_url, f"http://{redis.hostname}:{redis.port}", "http://169.254.169.254"):
        with pytest.raises(ProviderRefused) as info:
            get_provider(fake_llm.config(kind, base_url=base_url)).check()
        assert str(info.value) == outbound.POLICY_TEXT, base_url
    assert fake_llm.requests == []


def test_an_allowed_base_url_is_used(fake_llm):
    assert get_provider(fake_llm.config("ollama")).check()
    assert len(fake_llm.requests) == 1


def test_a_redirect_is_not_followed_even_to_an_allowed_address(fake_llm, http_server):
    target = url_of(http_server, "/second")
    http_server.answer = (302, target)
    with pytest.raises(ProviderHTTPError) as info:
        get_provider(fake_llm.config("ollama", base_url=url_of(http_server))).check()
    assert info.value.status_code == 302
    assert http_server.hits == ["/api/tags"]  # the redirect's target was never asked


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port nobody should connect to (non-blocking: accept() says whether anyone did)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.setblocking(False)
    yield sock
    sock.close()


def test_a_followed_redirect_to_a_forbidden_address_is_refused_at_the_connect(settings, http_server, listener):
    """Where a client does follow redirects, the transport checks the new target like the first."""
    settings.MAILHELPER_OUTBOUND_ALLOW = [f"127.0.0.1:{http_server.server_address[1]}"]  # not the listener
    http_server.answer = (302, f"http://127.0.0.1:{listener.getsockname()[1]}/")
    client = httpx.Client(transport=outbound.HTTPTransport(), trust_env=False, follow_redirects=True)
    with client, pytest.raises(outbound.PolicyRefused):
        client.get(url_of(http_server))
    assert http_server.hits == ["/"]
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected


def test_the_provider_test_button_shows_the_policy_sentence(default_policy, alice, alice_client):
    ProviderSettings.objects.create(
        owner=alice.user, enabled=True, kind="openai", base_url="http://169.254.169.254", model="m", api_key="sk-x"
    )
    html = alice_client.post(reverse("mail:provider-test")).content.decode()
    assert outbound.POLICY_TEXT.replace("'", "&#x27;") in html and 'class="notice error"' in html
