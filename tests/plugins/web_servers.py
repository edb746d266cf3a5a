"""A loopback HTTPS server that records what it is sent: the far end of one-click unsubscribe.

Real TLS with a self-signed certificate for localhost/127.0.0.1 (tests trust it through
MAILHELPER_EXTRA_CA_FILE, as an operator with an own CA would), a real HTTP/1.1 parser
(http.server), and an answer the test chooses (status, or a redirect).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.mailservers import make_self_signed_cert


@dataclass
class WebRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpsRecorder:
    cert_path: Path
    key_path: Path
    status: int = 200
    location: str = ""
    requests: list[WebRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append(
                    WebRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(recorder.status)
                if recorder.location:
                    self.send_header("Location", recorder.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _record  # noqa: N815 (http.server's naming)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def url(self, path: str = "/") -> str:
        assert self._server is not None
        return f"https://localhost:{self._server.server_address[1]}{path}"

    def reset(self) -> None:
        self.status, self.location = 200, ""
        self.requests.clear()


@pytest.fixture(scope="session")
def _https_recorder_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsRecorder]:
    cert_path, key_path = make_self_signed_cert(tmp_path_factory.mktemp("https"))
    recorder = HttpsRecorder(cert_path, key_path)
    recorder.start()
    yield recorder
    recorder.stop()


@pytest.fixture
def https_recorder(_https_recorder_server: HttpsRecorder, settings) -> HttpsRecorder:
    """The recording HTTPS server, emptied, answering 200, its certificate trusted by the product."""
    _https_recorder_server.reset()
    settings.MAILHELPER_EXTRA_CA_FILE = str(_https_recorder_server.cert_path)
    return _https_recorder_server
