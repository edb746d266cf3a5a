"""A loopback OAuth2 authorization server: the far end of "Sign in with ..." and of Dovecot's token check.

It speaks the parts of RFC 6749 / 7636 / 7662 / 7009 that the product and Dovecot use, with real HTTP:

* ``GET /authorize`` shows a consent page (Allow / Deny) for the user the test signed in
  (``server.user``); the decision redirects to the client's ``redirect_uri`` with ``code`` and
  ``state``, or ``error=access_denied``.
* ``POST /token`` exchanges a code (checking the client secret, the redirect URI and the PKCE
  verifier, S256) or a refresh token for tokens; refresh tokens rotate, like Microsoft's. The answer
  carries an ``id_token`` whose payload names the user's address (unsigned: the client reads it from
  the token endpoint over TLS, OpenID Connect Core 3.1.3.7).
* ``POST /introspect`` (plain HTTP on a second port, for Dovecot's ``oauth2`` passdb) says whether
  an access token is active, for which user and with which scope.
* ``POST /revoke`` revokes a refresh token and every access token it produced (consent withdrawn).

The client endpoints are HTTPS with a self-signed certificate that the tests trust through
MAILHELPER_EXTRA_CA_FILE, as an operator's own CA would be.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from mailhelper.local_dovecot import DovecotServer, ImapUser, make_self_signed_cert
from tests.plugins.mailservers import SmtpSink

CLIENT_ID = "mailhelper-test-client"
CLIENT_SECRET = "test-client-secret"  # noqa: S105 - the fake server's own
MAIL_SCOPE = "mail"


@dataclass
class Grant:
    user: str
    scope: str
    refresh_token: str
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float


@dataclass
class OAuthServer:
    """State shared by both listeners; the test changes ``user``, ``scope`` and ``expires_in`` as it needs."""

    cert_path: Path
    key_path: Path
    user: str = ""
    scope: str = f"openid email {MAIL_SCOPE}"
    expires_in: int = 3600
    rotate_refresh_tokens: bool = True
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _grants: dict[str, Grant] = field(default_factory=dict)  # by refresh token
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _https: ThreadingHTTPServer | None = None
    _http: ThreadingHTTPServer | None = None

    # -- what tests call ------------------------------------------------------------------------
    def url(self, path: str) -> str:
        assert self._https is not None
        return f"https://localhost:{self._https.server_address[1]}{path}"

    @property
    def introspection_url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}/introspect"

    def provider_settings(self, imap_host: str, imap_port: int, smtp_host: str = "", smtp_port: int = 587) -> dict:
        """MAILHELPER_OAUTH_PROVIDERS["generic"] pointing here."""
        return {
            "name": "Example Mail",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorize_url": self.url("/authorize"),
            "token_url": self.url("/token"),
            "revoke_url": self.url("/revoke"),
            "scopes": f"openid email {MAIL_SCOPE}",
            "imap_host": imap_host,
            "imap_port": imap_port,
            "imap_security": "plain",
            "smtp_host": smtp_host,
            "smtp_port": smtp_port,
            "smtp_security": "plain",
        }

    def issue(self, user: str, scope: str | None = None) -> tuple[str, str]:
        """(access token, refresh token) for ``user``, as after a consent; for tests that skip the browser."""
        with self._lock:
            grant = Grant(user, scope or self.scope, "rt-" + secrets.token_urlsafe(24))
            self._grants[grant.refresh_token] = grant
            return self._new_access(grant), grant.refresh_token

    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._access.values():
                token.expires_at = 0

    def revoke_all(self, user: str) -> None:
        """The user withdrew consent at the provider: refresh and access tokens stop working."""
        with self._lock:
            for grant in self._grants.values():
                if grant.user == user:
                    grant.revoked = True

    def revoked(self, refresh_token: str) -> bool:
        """Whether the grant of this refresh token was revoked (by /revoke or revoke_all)."""
        with self._lock:
            return self._grants[refresh_token].revoked

    def active(self, access_token: str) -> AccessToken | None:
        token = self._access.get(access_token)
        if token is None or token.grant.revoked or token.expires_at < time.time():
            return None
        return token

    def reset(self) -> None:
        with self._lock:
            self.user, self.scope, self.expires_in = "", f"openid email {MAIL_SCOPE}", 3600
            self.rotate_refresh_tokens = True
            self.token_requests.clear()

    # -- protocol ---------------------------------------------------------------------------------
    def _new_access(self, grant: Grant) -> str:
        token = "at-" + secrets.token_urlsafe(24)
        self._access[token] = AccessToken(grant, time.time() + self.expires_in)
        return token

    def _token_answer(self, grant: Grant) -> dict[str, Any]:
        payload = {"iss": self.url(""), "sub": grant.user, "email": grant.user, "aud": CLIENT_ID}
        id_token = ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
            for part in ({"alg": "none"}, payload)
        )
        return {
            "access_token": self._new_access(grant),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": grant.refresh_token,
            "scope": grant.scope,
            "id_token": id_token + ".",
        }

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        self.token_requests.append({k: v for k, v in form.items() if k in ("grant_type", "scope")})
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        with self._lock:
            if form.get("grant_type") == "authorization_code":
                pending = self._codes.pop(form.get("code", ""), None)
                if pending is None or pending["redirect_uri"] != form.get("redirect_uri"):
                    return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge != pending["code_challenge"]:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                grant = Grant(pending["user"], self.scope, "rt-" + secrets.token_urlsafe(24))
                self._grants[grant.refresh_token] = grant
                return 200, self._token_answer(grant)
            if form.get("grant_type") == "refresh_token":
                grant = self._grants.get(form.get("refresh_token", ""))
                if grant is None or grant.revoked:
                    return 400, {"error": "invalid_grant", "error_description": "token revoked or expired"}
                grant.scope = self.scope  # what the user allows now (they may have unticked mail meanwhile)
                if self.rotate_refresh_tokens:
                    del self._grants[grant.refresh_token]
                    grant.refresh_token = "rt-" + secrets.token_urlsafe(24)
                    self._grants[grant.refresh_token] = grant
                return 200, self._token_answer(grant)
        return 400, {"error": "unsupported_grant_type"}

    def decide(self, query: dict[str, str], allow: bool) -> str:
        """Where the consent page's button sends the browser."""
        redirect = query["redirect_uri"]
        if not allow:
            return f"{redirect}?{urlencode({'error': 'access_denied', 'state': query.get('state', '')})}"
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {
                "user": self.user,
                "redirect_uri": redirect,
                "code_challenge": query.get("code_challenge", ""),
            }
        return f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    # -- servers ----------------------------------------------------------------------------------
    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes, content_type: str, location: str = "") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: dict[str, Any]) -> None:
                self._send(status, json.dumps(data).encode(), "application/json")

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                return {k: v[0] for k, v in parse_qs(body).items()}

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path != "/authorize":
                    return self._send(404, b"", "text/plain")
                if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
                    return self._send(400, b"bad authorization request", "text/plain")
                hidden = "".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items()
                )
                page = (
                    f"<html><body><h1>Example Mail</h1><p>Allow Mailhelper to read and send mail as "
                    f"{html.escape(server.user)}?</p><form method=post action=/decide>{hidden}"
                    f"<button name=decision value=allow id=allow>Allow</button>"
                    f"<button name=decision value=deny id=deny>Deny</button></form></body></html>"
                )
                self._send(200, page.encode(), "text/html")

            def do_POST(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                form = self._form()
                if path == "/decide":
                    location = server.decide(form, form.get("decision") == "allow")
                    return self._send(302, b"", "text/plain", location)
                if path == "/token":
                    basic = None
                    if self.headers.get("Authorization", "").startswith("Basic "):
                        user, _, password = base64.b64decode(self.headers["Authorization"][6:]).decode().partition(":")
                        basic = (user, password)
                    return self._json(*server.token(form, basic))
                if path == "/introspect":
                    token = server.active(form.get("token", ""))
                    if token is None:
                        return self._json(200, {"active": False})
                    return self._json(200, {"active": True, "username": token.grant.user, "scope": token.grant.scope})
                if path == "/revoke":
                    with server._lock:
                        grant = server._grants.get(form.get("token", ""))
                        if grant is not None:
                            grant.revoked = True
                    return self._send(200, b"", "text/plain")
                return self._send(404, b"", "text/plain")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._https = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        self._https.socket = context.wrap_socket(self._https.socket, server_side=True)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        for listener in (self._https, self._http):
            threading.Thread(target=listener.serve_forever, daemon=True).start()

    def stop(self) -> None:
        for listener in (self._https, self._http):
            if listener is not None:
                listener.shutdown()
                listener.server_close()


@pytest.fixture(scope="session")
def _oauth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    cert_path, key_path = make_self_signed_cert(tmp_path_factory.mktemp("oauth"))
    server = OAuthServer(cert_path, key_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_oauth(_oauth_server: OAuthServer) -> Iterator[DovecotServer]:
    """A Dovecot that accepts XOAUTH2 and OAUTHBEARER, checking each token with the fake server's introspection."""
    server = DovecotServer.create(oauth2_introspection_url=_oauth_server.introspection_url)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def dovecot_xoauth2(_oauth_server: OAuthServer) -> Iterator[DovecotServer]:
    """Like ``dovecot_oauth`` but offering XOAUTH2 only (as Microsoft 365 does), so that path is proven too."""
    server = DovecotServer.create(oauth2_introspection_url=_oauth_server.introspection_url, oauth2_mechanisms="xoauth2")
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def _smtp_sink_oauth_server(_oauth_server: OAuthServer) -> Iterator[SmtpSink]:
    def verify(user: str, token: str) -> bool:
        active = _oauth_server.active(token)
        return active is not None and active.grant.user == user

    sink = SmtpSink(oauth_verify=verify, require_auth=True)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink_oauth(_smtp_sink_oauth_server: SmtpSink) -> SmtpSink:
    """An SMTP sink that takes AUTH XOAUTH2 with tokens the fake provider holds active, and nothing else."""
    _smtp_sink_oauth_server.clear()
    return _smtp_sink_oauth_server


@pytest.fixture
def oauth_server(_oauth_server: OAuthServer, settings) -> OAuthServer:
    """The fake authorization server, reset, its certificate trusted by the product."""
    _oauth_server.reset()
    settings.MAILHELPER_EXTRA_CA_FILE = str(_oauth_server.cert_path)
    return _oauth_server


@pytest.fixture
def oauth_user(dovecot_oauth: DovecotServer, oauth_server: OAuthServer) -> ImapUser:
    """A mailbox on the OAuth Dovecot whose owner is the one signed in at the fake provider."""
    user = dovecot_oauth.add_user(f"oauth{secrets.token_hex(4)}@example.test")
    oauth_server.user = user.username
    return user
