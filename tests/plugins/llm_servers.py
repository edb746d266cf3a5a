"""A loopback HTTP server that speaks the LLM providers' wire protocols, scripted per test.

Why a real server rather than mocking httpx: the providers' timeouts, connection errors, status
handling and header/body encoding are exactly what can go wrong in production, and only a socket
exercises them. One ``ThreadingHTTPServer`` on 127.0.0.1 serves all three protocols on their own paths:

* Ollama: ``POST /api/chat``, ``GET /api/tags``
* OpenAI-compatible: ``POST /v1/chat/completions``, ``GET /v1/models``
* Anthropic: ``POST /v1/messages``, ``GET /v1/models/{id}``

A test scripts it through the ``fake_llm`` fixture::

    fake_llm.behaviour = "slow"          # see BEHAVIOURS
    fake_llm.answer = {...}              # the JSON object returned as the model's analysis
    fake_llm.reply_text = "Dear ..."     # when set, returned as the model's text instead of ``answer``
    fake_llm.expected_key = "sk-..."     # when set, any other key gets HTTP 401
    fake_llm.requests                    # every request received: path, headers, parsed JSON body

and asserts on ``fake_llm.requests`` that no personal data left the server and that the key was sent
in the right header. The server lives for the session; its state is reset for every test.

Registered by tests/conftest.py (``pytest_plugins``); ``-p tests.plugins.llm_servers`` also works.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from analysis.providers import ProviderConfig

LOCALHOST = "127.0.0.1"

BEHAVIOURS = (
    "ok",  # a valid answer (``answer`` as JSON, or ``reply_text``)
    "slow",  # the valid answer, after ``slow_seconds``
    "http500",  # HTTP 500 with an error body (containing ERROR_BODY_MARKER)
    "not_json",  # HTTP 200, but the model's text is prose without any JSON object
    "invalid_schema",  # HTTP 200, the model's text is JSON that violates the analysis schema
    "fenced_json",  # HTTP 200, the answer wrapped in ```json fences after a sentence
    "refuse_auth",  # HTTP 401 whatever the key (body contains ERROR_BODY_MARKER)
    "garbage_body",  # HTTP 200 whose body is HTML, not the protocol's JSON
    "disconnect",  # the connection is closed without any answer
)

# Put in every error body so tests can assert that no response body reaches an exception text.
ERROR_BODY_MARKER = "FAKE-LLM-ERROR-BODY-7f3a"

DEFAULT_MODELS = ("llama3.1:8b", "gpt-4o-mini", "claude-3-5-haiku-latest")
DEFAULT_ANSWER: dict[str, Any] = {
    "urgency": 3,
    "importance": 2,
    "category": "action_required",
    "is_spam": False,
    "is_newsletter": False,
    "confidence": 0.82,
    "summary": "The sender asks for the signed contract by Friday.",
    "reasons": ["explicit deadline", "direct request"],
}
NOT_JSON_TEXT = "I'm sorry, but I can't help with that request."
INVALID_SCHEMA_ANSWER: dict[str, Any] = {"urgency": 7, "importance": "high", "category": "urgent", "summary": 42}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON body, or None
    raw: str  # the body as text

    def prompt_text(self) -> str:
        """All prompt text of a chat request (system and messages), whatever the protocol."""
        if not isinstance(self.body, dict):
            return ""
        parts = [str(self.body.get("system", ""))]
        parts += [str(m.get("content", "")) for m in self.body.get("messages", []) if isinstance(m, dict)]
        return "\n".join(parts)


class FakeLLM:
    """The scripted state and the protocol logic; the HTTP handler only moves bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._server = ThreadingHTTPServer((LOCALHOST, 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)
        self.reset()

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._wake.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Back to a healthy server with an empty request log; wakes handlers still sleeping ("slow")."""
        with self._lock:
            self._wake.set()
            self._wake = threading.Event()
            self.behaviour = "ok"
            self.answer: dict[str, Any] = copy.deepcopy(DEFAULT_ANSWER)
            self.reply_text: str | None = None
            self.expected_key: str | None = None
            self.slow_seconds = 3.0
            self.models: list[str] = list(DEFAULT_MODELS)
            # response_format types the OpenAI protocol accepts; LM Studio, for one, has no "json_object".
            self.openai_response_formats: set[str] = {"text", "json_object", "json_schema"}
            self.requests: list[RecordedRequest] = []

    # ---- for tests --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def config(self, kind: str, **overrides: Any) -> ProviderConfig:
        """A ProviderConfig pointing at this server, with a test key and a short timeout."""
        from analysis.providers import ProviderConfig

        models = {"ollama": DEFAULT_MODELS[0], "openai": DEFAULT_MODELS[1], "anthropic": DEFAULT_MODELS[2]}
        values: dict[str, Any] = {
            "kind": kind,
            "base_url": self.base_url,
            "model": models.get(kind, "test-model"),
            "api_key": "sk-test-key-0123456789",
            "timeout": 5.0,
        }
        values.update(overrides)
        return ProviderConfig(**values)

    def sent_text(self) -> str:
        """Everything that reached the server except auth headers: paths and bodies, for leak checks."""
        return "\n".join(f"{r.path}\n{r.raw}" for r in self.requests)

    def assert_not_sent(self, *values: str) -> None:
        """Fail if any value (case-insensitive; also JSON-escaped) reached the server."""
        sent = self.sent_text().casefold()
        for value in values:
            escaped = json.dumps(value)[1:-1].casefold()
            assert value.casefold() not in sent and escaped not in sent, f"{value!r} was sent to the provider"

    # ---- protocol ---------------------------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        method = handler.command
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8", "replace") if length else ""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, body, raw))
            behaviour, wake = self.behaviour, self._wake

        protocol = _protocol(method, path, headers)
        if protocol is None:
            return _send_json(handler, 404, {"error": f"no route {method} {path}"})
        if behaviour == "slow" and wake.wait(self.slow_seconds):
            return None  # the test ended; the client is long gone
        if behaviour == "disconnect":
            handler.close_connection = True
            return None
        if not self._authorised(protocol, headers) or behaviour == "refuse_auth":
            return _send_json(handler, 401, _error_body(protocol, "authentication_error", "invalid api key"))
        if behaviour == "http500":
            return _send_json(handler, 500, _error_body(protocol, "api_error", "internal server error"))
        if behaviour == "garbage_body":
            return _send(handler, 200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        if method == "GET":
            return self._models(handler, protocol, path)
        problem = _protocol_problem(protocol, body, self.openai_response_formats)
        if problem:
            return _send_json(handler, 400, _error_body(protocol, "invalid_request_error", problem))
        return _send_json(handler, 200, _chat_answer(protocol, body["model"], self._content(behaviour)))

    def _authorised(self, protocol: str, headers: dict[str, str]) -> bool:
        if self.expected_key is None:
            return True
        if protocol == "anthropic":
            return headers.get("x-api-key") == self.expected_key
        return headers.get("authorization") == f"Bearer {self.expected_key}"

    def _content(self, behaviour: str) -> str:
        """The model's text for a chat request under the current behaviour."""
        if behaviour == "not_json":
            return NOT_JSON_TEXT
        if behaviour == "invalid_schema":
            return json.dumps(INVALID_SCHEMA_ANSWER)
        if self.reply_text is not None:
            return self.reply_text
        if behaviour == "fenced_json":
            return f"Sure! Here is the analysis:\n```json\n{json.dumps(self.answer, indent=2)}\n```\nAnything else?"
        return json.dumps(self.answer)

    def _models(self, handler: _Handler, protocol: str, path: str) -> None:
        if protocol == "ollama":
            models = [{"name": m, "model": m, "size": 1, "details": {"family": "test"}} for m in self.models]
            return _send_json(handler, 200, {"models": models})
        if protocol == "openai":
            data = [{"id": m, "object": "model", "owned_by": "test"} for m in self.models]
            return _send_json(handler, 200, {"object": "list", "data": data})
        model = path.rsplit("/", 1)[1]
        if model not in self.models:
            return _send_json(handler, 404, _error_body(protocol, "not_found_error", f"model: {model}"))
        return _send_json(handler, 200, {"type": "model", "id": model, "display_name": f"Test {model}"})


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeLLM/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence: the request log is ``fake_llm.requests``."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client gave up (timeout tests); nothing to report


def _protocol(method: str, path: str, headers: dict[str, str]) -> str | None:
    routes = {
        ("POST", "/api/chat"): "ollama",
        ("GET", "/api/tags"): "ollama",
        ("POST", "/v1/chat/completions"): "openai",
        ("GET", "/v1/models"): "openai",
        ("POST", "/v1/messages"): "anthropic",
    }
    if method == "GET" and path.startswith("/v1/models/"):
        return "anthropic"
    return routes.get((method, path))


def _protocol_problem(protocol: str, body: Any, openai_formats: set[str]) -> str:
    """What a real server would reject with HTTP 400, so protocol mistakes in the client show up."""
    if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
        return "model and messages are required"
    if protocol == "openai" and "response_format" in body:
        response_format = body["response_format"]
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in openai_formats:
            return f"'response_format.type' must be one of {sorted(openai_formats)}"
        if kind == "json_schema" and not isinstance(response_format.get("json_schema", {}).get("schema"), dict):
            return "'response_format.json_schema.schema' is required"
    if protocol == "anthropic":
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: field required"
        if any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
            return "messages: roles must be user or assistant (system goes in the top-level field)"
    return ""


def _chat_answer(protocol: str, model: str, content: str) -> dict[str, Any]:
    if protocol == "ollama":
        return {
            "model": model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": "stop",
        }
    if protocol == "openai":
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1735689600,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": content}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }


def _error_body(protocol: str, kind: str, message: str) -> dict[str, Any]:
    text = f"{message} ({ERROR_BODY_MARKER})"
    if protocol == "ollama":
        return {"error": text}
    if protocol == "openai":
        return {"error": {"message": text, "type": kind, "code": None}}
    return {"type": "error", "error": {"type": kind, "message": text}}


def _send_json(handler: _Handler, status: int, payload: Any) -> None:
    _send(handler, status, json.dumps(payload).encode(), "application/json")


def _send(handler: _Handler, status: int, data: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def refused_base_url() -> str:
    """A loopback URL where nothing listens (connection refused), for "provider down" tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        port = probe.getsockname()[1]
    return f"http://{LOCALHOST}:{port}"


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    server = FakeLLM()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> Iterator[FakeLLM]:
    """The shared fake provider server, reset to healthy and empty for this test."""
    fake_llm_server.reset()
    yield fake_llm_server
    fake_llm_server.reset()
