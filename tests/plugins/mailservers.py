"""Real mail servers for the test suite: Dovecot (mailhelper/local_dovecot.py) and an aiosmtpd SMTP sink.

The Dovecot helpers are plain Python shared with bench/ and `make demo`; this module adds the SMTP sink
and the pytest fixtures, which are thin wrappers around both.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailhelper.local_dovecot import (
    LOCALHOST,
    DovecotServer,
    ImapUser,
    client_ssl_context,
    free_port,
    make_self_signed_cert,
)

# --------------------------------------------------------------------------------------------------
# SMTP sink
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SinkMessage:
    """One message accepted by the SMTP sink, exactly as the client sent it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    auth_login: str | None = None
    tls: bool = False


class _SinkHandler:
    """aiosmtpd handler that stores every message instead of relaying it."""

    def __init__(self) -> None:
        self.messages: list[SinkMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        auth = session.auth_data if session.authenticated else None
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.messages.append(
            SinkMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                auth_login=login,
                tls=session.ssl is not None,
            )
        )
        return "250 OK: message stored by test sink"


class _OAuthSinkHandler(_SinkHandler):
    """Also takes AUTH XOAUTH2, asking ``verify(user, token)`` whether the bearer token is good."""

    def __init__(self, verify: Callable[[str, str], bool]) -> None:
        super().__init__()
        self.verify = verify

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd's naming)
        blob = base64.b64decode(args[1]) if len(args) == 2 else await server.challenge_auth("")
        if not isinstance(blob, bytes):
            return AuthResult(success=False, handled=False)
        fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        if self.verify(user, token):
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # The refusal as Gmail sends it: a JSON challenge, the client's empty answer, then 535.
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)


@dataclass
class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps what it receives in :attr:`messages`.

    With ``username``/``password`` set it offers AUTH PLAIN/LOGIN and rejects other credentials;
    with ``cert_path``/``key_path`` set it offers STARTTLS. When both are set, AUTH is only allowed
    after STARTTLS (like real submission servers); ``require_auth`` refuses mail without AUTH.
    """

    host: str = LOCALHOST
    port: int = 0
    username: str | None = None
    password: str | None = None
    cert_path: Path | None = None
    key_path: Path | None = None
    require_auth: bool = False
    #: Set: AUTH XOAUTH2 is offered, a token accepted when this says so for (user, token).
    oauth_verify: Callable[[str, str], bool] | None = None
    _handler: _SinkHandler = field(init=False, default_factory=_SinkHandler, repr=False)
    _controller: Controller | None = field(init=False, default=None, repr=False)

    @property
    def messages(self) -> list[SinkMessage]:
        """Messages received so far, oldest first (the live list, not a copy)."""
        return self._handler.messages

    def clear(self) -> None:
        """Forget received messages (called between tests when the sink is shared)."""
        self._handler.messages.clear()

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[SinkMessage]:
        """Wait until at least ``count`` messages arrived and return them.

        For mail sent asynchronously (e.g. by a Celery worker): polling here beats a fixed sleep.
        Raises AssertionError with what did arrive if the deadline passes.
        """
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s) within {timeout}s, got {len(self.messages)}: "
                    f"{[(m.mail_from, m.rcpt_tos) for m in self.messages]}"
                )
            time.sleep(0.02)
        return list(self.messages)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        """aiosmtpd authenticator: accept exactly the configured username/password."""
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.username is not None
            and auth_data.login == self.username.encode()
            and auth_data.password == (self.password or "").encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> None:
        """Start the server thread on a free port (or the configured one)."""
        if self.port == 0:
            self.port = free_port(self.host)
        kwargs: dict[str, object] = {}
        tls_context = None
        if self.cert_path and self.key_path:
            tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_context.load_cert_chain(str(self.cert_path), str(self.key_path))
            kwargs["tls_context"] = tls_context
        if self.oauth_verify is not None:
            self._handler = _OAuthSinkHandler(self.oauth_verify)
            kwargs["auth_require_tls"] = tls_context is not None
            kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
            kwargs["auth_required"] = self.require_auth
            # A loopback test sink: AUTH without TLS is what it is for (aiosmtpd warns about it otherwise).
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
        if self.username is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = tls_context is not None
            kwargs["auth_required"] = self.require_auth
        self._controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",  # avoids a slow socket.getfqdn() per connection
            **kwargs,
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop the server thread; the port is released."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def run_as_nobody(script: str, modules: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run `script` as `nobody` with the system's Python, as `make demo` on a laptop runs as its owner.

    The given mailhelper/ modules (plain Python) are copied into a world-readable temp dir as the package
    `mailhelper`; the script finds that dir in sys.argv[1] and runs with it as the working directory.
    """
    root = Path(__file__).resolve().parents[2]
    directory = Path(tempfile.mkdtemp(prefix="mailhelper-nonroot-"))
    try:
        (directory / "mailhelper").mkdir()
        (directory / "mailhelper" / "__init__.py").touch()
        for name in modules:
            shutil.copy(root / "mailhelper" / name, directory / "mailhelper" / name)
        subprocess.run(["chmod", "-R", "a+rX", str(directory)], check=True)
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        return subprocess.run(
            ["runuser", "-u", "nobody", "--", python, "-c", script, str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=directory,
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# pytest fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A running Dovecot for the whole session; stopped and its temp dir removed at the end.

    Setup costs ~0.3 s (most of it generating the RSA key; Dovecot itself listens after ~0.03 s).
    """
    server = DovecotServer.create()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> Iterator[ImapUser]:
    """A fresh user with an empty Maildir on the session Dovecot, so tests never share mail.

    Also makes sure the server is running again if a previous (fault) test stopped it and failed.
    """
    if not dovecot.running:
        dovecot.start()
    yield dovecot.add_user()
    if not dovecot.running:
        dovecot.start()


@pytest.fixture(scope="session")
def _smtp_sink_server() -> Iterator[SmtpSink]:
    """One plain SMTP sink for the session; ``smtp_sink`` clears it per test."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink(_smtp_sink_server: SmtpSink) -> SmtpSink:
    """A plain SMTP sink (no TLS, no AUTH) with an empty ``messages`` list."""
    _smtp_sink_server.clear()
    return _smtp_sink_server


@pytest.fixture(scope="session")
def _smtp_sink_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    """One STARTTLS + AUTH sink for the session; ``smtp_sink_tls`` clears it per test."""
    cert_path, key_path = make_self_signed_cert(tmp_path_factory.mktemp("smtp-tls"))
    sink = SmtpSink(
        username="sender@example.test",
        password=secrets.token_urlsafe(12),
        cert_path=cert_path,
        key_path=key_path,
        require_auth=True,
    )
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink_tls(_smtp_sink_tls_server: SmtpSink) -> SmtpSink:
    """An SMTP sink offering STARTTLS (self-signed ``cert_path``) and requiring AUTH PLAIN/LOGIN
    with ``username``/``password`` after STARTTLS; ``messages`` starts empty."""
    _smtp_sink_tls_server.clear()
    return _smtp_sink_tls_server


__all__ = [
    "DovecotServer",
    "ImapUser",
    "SinkMessage",
    "SmtpSink",
    "client_ssl_context",
    "dovecot",
    "free_port",
    "imap_user",
    "make_self_signed_cert",
    "smtp_sink",
    "smtp_sink_tls",
]
