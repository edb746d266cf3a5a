"""The one module that speaks POP3 (RFC 1939, through the standard library's poplib).

Shaped like mail/imap.py: the sync service sees plain dataclasses and three exception types, never
poplib, socket or ssl errors, and every message is written for the user (no password, no mail
content, nothing the server said verbatim). The failure kinds are imap.py's and connecting.py's
(policy | dns | refused | tls | timeout | network | protocol), so the UI and the retry policy treat
both protocols alike.

Security as the account says: "ssl" is POP3S (implicit TLS, port 995), "starttls" is STLS
(RFC 2595) on port 110 and fails if the server does not offer it (never a silent fallback to plain
text), "plain" is neither. Every connection is made by core/outbound.py (the host's addresses checked
once, the socket opened to a checked IP); TLS verifies the certificate for the host name the user gave.

What POP3 offers and what we use of it: USER/PASS, UIDL (a message's persistent unique id; the
sync state is the set of UIDLs already stored), LIST (sizes), RETR, DELE, QUIT. Deletions take
effect only when QUIT is answered (RFC 1939, UPDATE state): a session closed any other way deletes
nothing, which `Pop3Session.close` relies on.
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import ssl
from dataclasses import dataclass

from django.utils.translation import gettext_noop, ngettext

from core import outbound
from core.stored_text import Text

from .connecting import ServerConfig, describe_connect_error, tls_context

#: A single line longer than this is refused (poplib's own limit, 2,048 bytes, is far below what real
#: mail has: HTML bodies without line breaks). A message beyond the sync's size limits is refused anyway.
_MAX_LINE = 64 * 1024 * 1024
_CRLF = b"\r\n"


class Pop3Error(Exception):
    """Base class. `str(exc)` is a message fit to show the user."""


class Pop3ConnectError(Pop3Error):
    """Could not reach or talk to the server; worth retrying later. `kind` says why."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # policy | dns | refused | tls | timeout | network | protocol


class Pop3AuthError(Pop3Error):
    """The server refused the credentials: retrying will not help until the user fixes them."""


@dataclass(frozen=True)
class ListedMessage:
    """A message as the server lists it in this session: its number (this session only) and UIDL."""

    number: int
    uidl: str
    size: int


def _translate(exc: BaseException, config: ServerConfig) -> Pop3Error:
    where = f"{config.host}:{config.port}"
    known = describe_connect_error(exc, config.host, config.port, "POP3")
    if known is not None:
        return Pop3ConnectError(*known)
    if isinstance(exc, OSError):
        text = gettext_noop("Network error talking to %(where)s (%(error)s).")
        return Pop3ConnectError("network", Text(text, where=where, error=type(exc).__name__))
    return Pop3ConnectError("protocol", Text(gettext_noop("%(where)s did not speak POP3 as expected."), where=where))


def _response_code(exc: poplib.error_proto) -> str:
    """The RFC 2449/3206 response code of an -ERR ("AUTH", "IN-USE", "SYS/TEMP"...), else ""."""
    text = exc.args[0] if exc.args else b""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = str(text).removeprefix("-ERR").strip()
    if text.startswith("[") and "]" in text:
        return text[1 : text.index("]")].upper()
    return ""


class _CheckedPOP3(poplib.POP3):
    """poplib's connection with its socket from core.outbound; `self.host` stays the name (SNI, STLS)."""

    def __init__(self, host: str, port: int, timeout: float, implicit_tls: ssl.SSLContext | None):
        self._implicit_tls = implicit_tls
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = outbound.connect(self.host, self.port, timeout)
        if self._implicit_tls is None:
            return sock
        try:
            return self._implicit_tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise

    def _getline(self) -> tuple[bytes, int]:
        """poplib's _getline without its 2,048-byte line limit (see _MAX_LINE)."""
        line = self.file.readline(_MAX_LINE + 1)
        while line and not line.endswith(b"\n") and len(line) <= _MAX_LINE:
            more = self.file.readline(_MAX_LINE + 1 - len(line))
            if not more:
                break
            line += more
        if len(line) > _MAX_LINE:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line.endswith(_CRLF):
            return line[:-2], octets
        if line.startswith(b"\r"):
            return line[1:-1], octets
        return line[:-1], octets


class Pop3Session:
    """A logged-in POP3 connection. Use as a context manager: `with Pop3Session(config) as pop:`.

    Leaving the block normally sends QUIT, which commits the DELEs of the session; leaving it by an
    exception only closes the socket, so nothing is deleted by a session that went wrong.
    """

    def __init__(self, config: ServerConfig):
        self.config = config
        self.client: _CheckedPOP3 | None = None

    def __enter__(self) -> Pop3Session:
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.quit()
        else:
            self.close()

    def open(self) -> None:
        config = self.config
        try:
            client = _CheckedPOP3(
                config.host,
                config.port,
                config.timeout,
                tls_context() if config.security == "ssl" else None,
            )
        except Exception as exc:  # noqa: BLE001 - translated into our own error types
            raise _translate(exc, config) from None
        self.client = client
        try:
            if config.security == "starttls":
                self._starttls(client)
            self._login(client)
        except Exception:
            self.close()
            raise

    def _starttls(self, client: _CheckedPOP3) -> None:
        where = f"{self.config.host}:{self.config.port}"
        try:
            capabilities = client.capa()
        except poplib.error_proto:
            capabilities = {}
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, self.config) from None
        if "STLS" not in capabilities:
            raise Pop3ConnectError(
                "tls",
                Text(
                    gettext_noop(
                        "%(where)s does not offer STLS: choose SSL/TLS (port 995), or check the port and security."
                    ),
                    where=where,
                ),
            )
        try:
            client.stls(tls_context())
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, self.config) from None

    def _login(self, client: _CheckedPOP3) -> None:
        try:
            client.user(self.config.username)
            client.pass_(self.config.password)
        except poplib.error_proto as exc:
            code = _response_code(exc)
            if code in ("IN-USE", "LOGIN-DELAY") or code.startswith("SYS/TEMP"):
                raise Pop3ConnectError(
                    "protocol",
                    Text(gettext_noop("The server is busy with this mailbox (another session?); trying again later.")),
                ) from None
            raise Pop3AuthError(Text(gettext_noop("The server rejected the user name or password."))) from None
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, self.config) from None

    def _call(self, func, *args):
        if self.client is None:
            raise Pop3ConnectError("network", Text(gettext_noop("The connection to the server is closed.")))
        try:
            return func(*args)
        except poplib.error_proto:
            where = f"{self.config.host}:{self.config.port}"
            raise Pop3ConnectError(
                "protocol",
                Text(
                    gettext_noop("%(where)s refused a POP3 command (%(command)s)."),
                    where=where,
                    command=func.__name__.upper().strip("_"),
                ),
            ) from None
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, self.config) from None

    def quit(self) -> None:
        """End the session with QUIT: the server deletes what this session marked with DELE."""
        if self.client is None:
            return
        try:
            self._call(self.client.quit)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection without QUIT (nothing marked for deletion is deleted)."""
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    # -- reading --------------------------------------------------------------------------------------
    def listing(self) -> list[ListedMessage]:
        """Every message of the maildrop with its UIDL and size, in server order.

        A server without UIDL cannot be synced incrementally (we could not tell new mail from old):
        that is a clear error, not a re-download of everything at each sync.
        """
        try:
            _, uidl_lines, _ = self._call(self.client.uidl)
        except Pop3ConnectError as exc:
            if exc.kind != "protocol":
                raise
            raise Pop3ConnectError(
                "protocol",
                Text(
                    gettext_noop(
                        "The POP3 server does not support UIDL, which Mailhelper needs to fetch only new mail."
                    )
                ),
            ) from None
        _, list_lines, _ = self._call(self.client.list)
        sizes = dict(_pairs(list_lines))
        listed = []
        for number, uidl in _pairs(uidl_lines, int_values=False):
            listed.append(ListedMessage(number=number, uidl=uidl, size=int(sizes.get(number, 0))))
        return listed

    def retrieve(self, number: int) -> bytes:
        """The whole message (RETR), with CRLF line ends and the dot-stuffing undone."""
        _, lines, _ = self._call(self.client.retr, number)
        return _CRLF.join(lines) + _CRLF

    # -- writing --------------------------------------------------------------------------------------
    def delete(self, number: int) -> None:
        """Mark a message for deletion; it is deleted when the session ends with QUIT."""
        self._call(self.client.dele, number)


def _pairs(lines: list[bytes], int_values: bool = True) -> list[tuple[int, int | str]]:
    """ "n value" lines of a UIDL or LIST answer; lines that are not of that form are skipped."""
    out = []
    for line in lines:
        parts = line.decode("ascii", "replace").split()
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        value = parts[1]
        if int_values:
            if not value.isdigit():
                continue
            out.append((int(parts[0]), int(value)))
        else:
            out.append((int(parts[0]), value))
    return out


@dataclass(frozen=True)
class ConnectionReport:
    """What "test connection" shows; the same fields as imap.ConnectionReport where they apply."""

    ok: bool
    message: str
    kind: str = ""
    messages: int | None = None
    folders: tuple = ()


def check_connection(config: ServerConfig) -> ConnectionReport:
    """Log in and list the maildrop; a precise message for each way it can fail."""
    try:
        with Pop3Session(config) as session:
            count = len(session.listing())
        text = ngettext(
            "Connected: %(count)s message on the POP3 server.",
            "Connected: %(count)s messages on the POP3 server.",
            count,
        )
        return ConnectionReport(True, text % {"count": count}, "", count)
    except Pop3AuthError as exc:
        return ConnectionReport(False, str(exc), "auth")
    except Pop3ConnectError as exc:
        return ConnectionReport(False, str(exc), exc.kind)
