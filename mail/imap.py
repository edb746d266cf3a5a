"""The one module that speaks IMAP (through imapclient).

Everything above it works with plain dataclasses and four exception types, so the sync service
and the views never see imapclient, imaplib or socket errors. Error messages are written for
the user and never contain a password or mail content.

Every connection goes through core/outbound.py: the socket is made by `outbound.connect` (the
host's addresses checked once, the connection made to a checked IP) and TLS, implicit or STARTTLS,
verifies the certificate for the host name the user gave.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils.translation import gettext_noop, ngettext
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response

from core import outbound
from core.stored_text import Text

from .connecting import ServerConfig, describe_connect_error, tls_context  # imap.ServerConfig for callers

SEEN, FLAGGED, ANSWERED, DRAFT, DELETED = "\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted"
_SPECIAL_USE_FLAGS = {
    b"\\sent": "sent",
    b"\\trash": "trash",
    b"\\drafts": "drafts",
    b"\\junk": "junk",
    b"\\archive": "archive",
    b"\\all": "all",
}
_SPECIAL_USE_NAMES = {
    "sent": "sent",
    "sent items": "sent",
    "sent messages": "sent",
    "gesendet": "sent",
    "trash": "trash",
    "deleted items": "trash",
    "deleted messages": "trash",
    "papierkorb": "trash",
    "drafts": "drafts",
    "entwürfe": "drafts",
    "junk": "junk",
    "spam": "junk",
    "archive": "archive",
    "archiv": "archive",
}


class ImapError(Exception):
    """Base class. `str(exc)` is a message fit to show the user; `exc.args[0]` is often a
    core.stored_text.Text, so a worker can store it and the page still shows it in its language."""


class ImapConnectError(ImapError):
    """Could not reach or talk to the server; worth retrying later. `kind` says why."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # policy | dns | refused | tls | timeout | network | protocol


class ImapAuthError(ImapError):
    """The server refused the credentials: retrying will not help until the user fixes them."""


class ImapFolderError(ImapError):
    """One folder could not be used (deleted meanwhile, no permission); others may still work."""


@dataclass(frozen=True)
class ServerFolder:
    name: str
    delimiter: str
    special_use: str
    selectable: bool
    messages: int | None = None
    unseen: int | None = None


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    highestmodseq: int | None
    exists: int
    # Whether the server keeps keywords (flags without a backslash) in this folder: PERMANENTFLAGS
    # holds \*. None after a read-only SELECT (EXAMINE), which answers PERMANENTFLAGS () whatever
    # the folder allows, so only a read-write SELECT (the write-back's) can tell.
    keywords_allowed: bool | None = None


@dataclass(frozen=True)
class FlagState:
    flags: tuple[str, ...]
    modseq: int | None


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    flags: tuple[str, ...]
    modseq: int | None
    size: int
    internal_date: datetime | None
    raw: bytes


def _flags(raw: Iterable[bytes | str]) -> tuple[str, ...]:
    return tuple(f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f) for f in raw)


def _translate_connect_error(exc: BaseException, config: ServerConfig) -> ImapError:
    where = f"{config.host}:{config.port}"
    known = describe_connect_error(exc, config.host, config.port, "IMAP")
    if known is not None:
        return ImapConnectError(*known)
    if isinstance(exc, LoginError):
        return ImapAuthError(Text(gettext_noop("The server rejected the user name or password.")))
    if isinstance(exc, OSError):
        text = gettext_noop("Network error talking to %(where)s (%(error)s).")
        return ImapConnectError("network", Text(text, where=where, error=type(exc).__name__))
    text = gettext_noop("%(where)s did not speak IMAP as expected (%(error)s).")
    return ImapConnectError("protocol", Text(text, where=where, error=type(exc).__name__))


class _OAuthMechanism:
    """The client side of SASL OAUTHBEARER (RFC 7628) or XOAUTH2 (Google's), remembering a refusal.

    Both send the token in the first response; a server that refuses it answers with a JSON challenge
    naming why, to which the client replies with a dummy response before the final NO.
    """

    def __init__(self, mechanism: str, username: str, token: str):
        self.mechanism, self.refusal = mechanism, ""
        if mechanism == "OAUTHBEARER":
            identity = username.replace("=", "=3D").replace(",", "=2C")
            self._first = f"n,a={identity},\x01auth=Bearer {token}\x01\x01"
        else:
            self._first = f"user={username}\x01auth=Bearer {token}\x01\x01"

    def __call__(self, challenge: bytes) -> bytes | str:
        if not challenge and not self.refusal:
            return self._first
        try:
            answer = json.loads(challenge)
        except ValueError:
            answer = {}
        self.refusal = str(answer.get("status", "")) if isinstance(answer, dict) else ""
        self.refusal = self.refusal or "refused"
        return b"\x01" if self.mechanism == "OAUTHBEARER" else b""


_OAUTH_REFUSALS = {
    "invalid_token": gettext_noop("The server refused the sign-in token (expired or revoked): sign in again."),
    "401": gettext_noop("The server refused the sign-in token (expired or revoked): sign in again."),
    "insufficient_scope": gettext_noop(
        "The sign-in does not allow mail access (wrong scopes): sign in again and allow mail access."
    ),
    "403": gettext_noop("The sign-in does not allow mail access (wrong scopes): sign in again and allow mail access."),
}


def _oauth_login(client: IMAPClient, config: ServerConfig) -> None:
    """OAUTHBEARER where offered (the standard), else XOAUTH2; an error that says what to do."""
    offered = {c.decode().upper() for c in client.capabilities()}
    mechanism = next((m for m in ("OAUTHBEARER", "XOAUTH2") if f"AUTH={m}" in offered), None)
    if mechanism is None:
        text = gettext_noop("The server does not offer sign-in with OAuth2 (AUTH=OAUTHBEARER or XOAUTH2).")
        raise ImapAuthError(Text(text))
    sasl = _OAuthMechanism(mechanism, config.username, config.oauth_token)
    try:
        client.sasl_login(mechanism, sasl)
    except (LoginError, IMAPClientError):
        known = _OAUTH_REFUSALS.get(sasl.refusal)
        refusal = gettext_noop("The server refused the OAuth2 sign-in of %(username)s.")
        raise ImapAuthError(Text(known) if known else Text(refusal, username=repr(config.username))) from None


class _CheckedIMAP4(imaplib.IMAP4):
    """imaplib's connection with its socket from core.outbound; `self.host` stays the name (SNI, STARTTLS)."""

    def __init__(self, host: str, port: int, timeout: float | None, ssl_context: ssl.SSLContext | None):
        self._implicit_tls = ssl_context
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


class _CheckedIMAPClient(IMAPClient):
    """IMAPClient on _CheckedIMAP4. `_create_IMAP4` is imapclient's one place that opens the connection
    (tests/mail/test_outbound_clients.py notices if an upgrade bypasses it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # imapclient sets imaplib's debug level to 5 to route imaplib's trace to logging. imaplib then
        # builds the trace text *before* the logger drops it: repr() of every literal and of the whole
        # FETCH response, i.e. a copy of each message's source as text. That was a fifth of the first
        # sync's CPU (docs/notes/sync-speed.md), and mail content in a log record if anyone turned
        # DEBUG on for it. imapclient's own command log ("> ...") is unaffected.
        self._imap.debug = 0

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 - imapclient's name
        return _CheckedIMAP4(self.host, self.port, self._timeout.connect, self.ssl_context if self.ssl else None)


class ImapSession:
    """A logged-in connection. Use as a context manager: `with ImapSession(config) as imap:`."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.client: _CheckedIMAPClient | None = None
        self.condstore = False
        self.capabilities: frozenset[str] = frozenset()
        self._selected: str | None = None
        self._readonly = True

    # -- connection -------------------------------------------------------------------------------
    def __enter__(self) -> ImapSession:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        config = self.config
        try:
            client = _CheckedIMAPClient(
                config.host,
                port=config.port,
                ssl=config.security == "ssl",
                ssl_context=tls_context() if config.security == "ssl" else None,
                timeout=config.timeout,
            )
        except Exception as exc:  # noqa: BLE001 - translated into our own error types
            raise _translate_connect_error(exc, config) from None
        self.client = client
        try:
            if config.security == "starttls":
                client.starttls(tls_context())
            if config.oauth_token:
                _oauth_login(client, config)
            else:
                client.login(config.username, config.password)
            self.capabilities = frozenset(c.decode().upper() for c in client.capabilities())
            if "CONDSTORE" in self.capabilities:
                client.enable("CONDSTORE")
                self.condstore = True
        except Exception as exc:  # noqa: BLE001
            self.close()
            if isinstance(exc, ImapError):
                raise
            raise _translate_connect_error(exc, config) from None

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            with contextlib.suppress(Exception):
                self.client.shutdown()
        self.client = None
        self._selected = None

    def _call(self, func, *args, **kwargs):
        """Run an imapclient call, translating transport failures into ImapConnectError."""
        if self.client is None:
            raise ImapConnectError("network", Text(gettext_noop("The connection to the server is closed.")))
        try:
            return func(*args, **kwargs)
        except (imaplib.IMAP4.abort, OSError, ssl.SSLError) as exc:
            raise _translate_connect_error(exc, self.config) from None
        except IMAPClientError as exc:
            error = type(exc).__name__
            if self._selected:
                text = gettext_noop("The server refused a command in %(folder)s (%(error)s).")
                text = Text(text, folder=repr(self._selected), error=error)
            else:
                text = Text(gettext_noop("The server refused a command (%(error)s)."), error=error)
            raise ImapFolderError(text) from None

    # -- folders ------------------------------------------------------------------------------------
    def list_folders(self, with_counts: bool = False) -> list[ServerFolder]:
        folders = []
        for flags, delimiter, name in self._call(self.client.list_folders):
            lowered = {f.lower() for f in flags}
            special = next((v for k, v in _SPECIAL_USE_FLAGS.items() if k in lowered), "")
            if name.upper() == "INBOX":
                special = "inbox"
            elif not special:
                special = _SPECIAL_USE_NAMES.get(name.split(delimiter.decode() if delimiter else "/")[-1].lower(), "")
            selectable = b"\\noselect" not in lowered and b"\\nonexistent" not in lowered
            messages = unseen = None
            if with_counts and selectable:
                try:
                    status = self._call(self.client.folder_status, name, [b"MESSAGES", b"UNSEEN"])
                    messages, unseen = status.get(b"MESSAGES"), status.get(b"UNSEEN")
                except ImapFolderError:
                    pass
            folders.append(
                ServerFolder(name, delimiter.decode() if delimiter else "", special, selectable, messages, unseen)
            )
        return folders

    def select(self, name: str, readonly: bool = True) -> FolderState:
        """Open a folder. Read-only (EXAMINE) for syncing: nothing we do there can change flags."""
        try:
            resp = self._call(self.client.select_folder, name, readonly=readonly)
        except ImapFolderError:
            self._selected = None
            text = gettext_noop("The folder %(folder)s cannot be opened.")
            raise ImapFolderError(Text(text, folder=repr(name))) from None
        self._selected, self._readonly = name, readonly
        modseq = resp.get(b"HIGHESTMODSEQ")
        return FolderState(
            uidvalidity=int(resp[b"UIDVALIDITY"]),
            uidnext=int(resp[b"UIDNEXT"]) if b"UIDNEXT" in resp else None,
            highestmodseq=int(modseq) if modseq is not None and self.condstore else None,
            exists=int(resp.get(b"EXISTS", 0)),
            keywords_allowed=None if readonly else keywords_allowed(resp.get(b"PERMANENTFLAGS")),
        )

    def ensure_selected(self, name: str, readonly: bool) -> None:
        if self._selected != name or (self._readonly and not readonly):
            self.select(name, readonly=readonly)

    # -- reading ------------------------------------------------------------------------------------
    def uids_from(self, first_uid: int) -> list[int]:
        """UIDs >= first_uid. ("n:*" always matches the last message, hence the filter.)"""
        found = self._call(self.client.search, ["UID", f"{max(first_uid, 1)}:*"])
        return sorted(uid for uid in found if uid >= first_uid)

    def all_uids(self) -> set[int]:
        return set(self._call(self.client.search, ["ALL"]))

    def search_uids(
        self, *, since: date | None = None, before: date | None = None, unseen: bool = False, below: int | None = None
    ) -> list[int]:
        """UIDs of the selected folder matching all the criteria given, ascending.

        `since` / `before` compare the server's arrival date (INTERNALDATE, days in the server's
        time zone), `unseen` the \\Seen flag, `below` the UID (strictly less). None means any.
        """
        if below is not None and below <= 1:
            return []
        criteria: list = []
        if below is not None:
            criteria += ["UID", f"1:{below - 1}"]
        if since is not None:
            criteria += ["SINCE", since]
        if before is not None:
            criteria += ["BEFORE", before]
        if unseen:
            criteria.append("UNSEEN")
        found = self._call(self.client.search, criteria or ["ALL"])
        return sorted(uid for uid in found if below is None or uid < below)

    def flags(self, uids: Iterable[int] | str = "1:*", changed_since: int | None = None) -> dict[int, FlagState]:
        items = ["FLAGS", "MODSEQ"] if self.condstore else ["FLAGS"]
        modifiers = [f"CHANGEDSINCE {changed_since}"] if changed_since is not None and self.condstore else None
        if not isinstance(uids, str):
            uids = list(uids)
            if not uids:
                return {}
            uids = seqset(uids)
        resp = self._call(self._fetch_range, uids, items, modifiers)
        return {uid: FlagState(_flags(data.get(b"FLAGS", ())), _modseq(data)) for uid, data in resp.items()}

    def _fetch_range(self, seqset: str, items: list[str], modifiers: list[str] | None) -> dict:
        """UID FETCH over a range such as "1:*".

        imapclient 4.1's fetch() drops every response whose UID is not in the list it was given,
        which makes ranges (and CHANGEDSINCE over a whole folder) return nothing; this is the same
        command without that filter.
        """
        client = self.client
        args = ["UID", "FETCH", seqset, seq_to_parenstr_upper(items)]
        if modifiers:
            args.append(seq_to_parenstr_upper(modifiers))
        tag = client._imap._command(*args)
        typ, data = client._imap._command_complete("FETCH", tag)
        client._checkok("fetch", typ, data)
        typ, data = client._imap._untagged_response(typ, data, "FETCH")
        return parse_fetch_response(data, client.normalise_times, True)

    def message_ids(self, uids: list[int]) -> dict[int, str]:
        """Message-ID header per UID, to recognise messages we already hold under another UID."""
        if not uids:
            return {}
        resp = self._call(self._fetch_range, seqset(uids), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"], None)
        result = {}
        for uid, data in resp.items():
            raw = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), b"") or b""
            value = raw.decode("ascii", "replace").partition(":")[2].strip()
            result[uid] = value.strip("<>").strip()
        return result

    def sizes(self, uids: list[int]) -> dict[int, int]:
        if not uids:
            return {}
        resp = self._call(self._fetch_range, seqset(uids), ["RFC822.SIZE"], None)
        return {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in resp.items()}

    def fetch_messages(self, uids: list[int]) -> Iterator[FetchedMessage]:
        """Whole messages with BODY.PEEK, so that syncing never marks anything as read."""
        if not uids:
            return
        items = ["BODY.PEEK[]", "FLAGS", "RFC822.SIZE", "INTERNALDATE"]
        if self.condstore:
            items.append("MODSEQ")
        wanted = set(uids)
        resp = self._call(self._fetch_range, seqset(uids), items, None)
        resp = {uid: data for uid, data in resp.items() if uid in wanted}
        for uid in sorted(resp):
            data = resp[uid]
            raw = data.get(b"BODY[]")
            if raw is None:  # expunged between SEARCH and FETCH
                continue
            yield FetchedMessage(
                uid=uid,
                flags=_flags(data.get(b"FLAGS", ())),
                modseq=_modseq(data),
                size=int(data.get(b"RFC822.SIZE", len(raw))),
                internal_date=data.get(b"INTERNALDATE"),
                raw=bytes(raw),
            )

    # -- writing ------------------------------------------------------------------------------------
    def add_flags(self, folder: str, uids: list[int], flags: list[str]) -> None:
        self.ensure_selected(folder, readonly=False)
        self._call(self.client.add_flags, uids, flags, silent=True)

    def remove_flags(self, folder: str, uids: list[int], flags: list[str]) -> None:
        self.ensure_selected(folder, readonly=False)
        self._call(self.client.remove_flags, uids, flags, silent=True)

    def move(self, folder: str, uids: list[int], destination: str) -> None:
        self.ensure_selected(folder, readonly=False)
        if "MOVE" in self.capabilities:
            self._call(self.client.move, uids, destination)
            return
        self._call(self.client.copy, uids, destination)
        self._call(self.client.add_flags, uids, [DELETED], silent=True)
        if "UIDPLUS" in self.capabilities:
            self._call(self.client.uid_expunge, uids)
        else:
            self._call(self.client.expunge)

    def delete(self, folder: str, uids: list[int]) -> None:
        """Remove messages for good (\\Deleted, then UID EXPUNGE of just these where UIDPLUS allows)."""
        self.ensure_selected(folder, readonly=False)
        self._call(self.client.add_flags, uids, [DELETED], silent=True)
        if "UIDPLUS" in self.capabilities:
            self._call(self.client.uid_expunge, uids)
        else:
            self._call(self.client.expunge)

    def append(self, folder: str, raw: bytes, flags: tuple[str, ...] = (), when: datetime | None = None) -> None:
        """Store a whole message in a folder (e.g. the copy of a sent reply in Sent, with \\Seen)."""
        try:
            self._call(self.client.append, folder, raw, flags=flags, msg_time=when)
        except ImapFolderError:
            text = gettext_noop("The server refused to store a message in %(folder)s.")
            raise ImapFolderError(Text(text, folder=repr(folder))) from None

    def find_message_id(self, folder: str, message_id: str) -> list[int]:
        """UIDs in `folder` whose Message-ID header is `message_id` (without angle brackets).

        Lets an APPEND that may already have happened (a retry after a lost answer) be skipped.
        """
        self.ensure_selected(folder, readonly=True)
        return list(self._call(self.client.search, ["HEADER", "Message-ID", f"<{message_id}>"]))

    def personal_prefix(self) -> str:
        """Where the user's own folders go (NAMESPACE, RFC 2342): "" on Dovecot, "INBOX/" on Cyrus."""
        if "NAMESPACE" not in self.capabilities:
            return ""
        personal = self._call(self.client.namespace).personal or ()
        prefix = personal[0][0] if personal and personal[0] else ""
        return prefix.decode() if isinstance(prefix, bytes) else str(prefix or "")

    def create_folder(self, name: str) -> str:
        """Make a folder among the user's own and return its full name ("Sent" -> "INBOX/Sent" on Cyrus,
        which refuses a top-level "Sent" with "Permission denied")."""
        full = self.personal_prefix() + name
        self._call(self.client.create_folder, full)
        return full


def keywords_allowed(permanentflags: Iterable[bytes | str] | None) -> bool:
    """Whether a read-write SELECT's PERMANENTFLAGS lets the client create and keep keywords (\\*).

    RFC 3501 7.1: without a PERMANENTFLAGS code every flag can be changed permanently.
    """
    if permanentflags is None:
        return True
    return "\\*" in _flags(permanentflags)


#: Characters an IMAP atom (so a keyword) may not hold besides controls, space and non-ASCII (RFC 3501 9).
KEYWORD_SPECIALS = frozenset('(){%*"\\]')


def is_keyword(value: str) -> bool:
    """Whether `value` is a keyword a client may set: a non-empty ASCII atom, not a \\system flag."""
    return (
        0 < len(value) <= 100
        and value.isascii()
        and all(32 < ord(c) < 127 and c not in KEYWORD_SPECIALS for c in value)
    )


def seqset(uids: list[int]) -> str:
    """Compact IMAP sequence set ("1:200,205,210:300"): a plain list of 10,000 UIDs would pass the
    server's command-line limit."""
    ordered = sorted(set(uids))
    ranges = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        ranges.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    ranges.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(ranges)


def _modseq(data: dict) -> int | None:
    value = data.get(b"MODSEQ")
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    return int(value) if value is not None else None


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    message: str
    kind: str = ""
    folders: list[ServerFolder] = field(default_factory=list)
    capabilities: frozenset[str] = frozenset()


def check_connection(config: ServerConfig) -> ConnectionReport:
    """Log in and list folders with counts; a precise message for each way it can fail."""
    try:
        with ImapSession(config) as session:
            folders = session.list_folders(with_counts=True)
            text = ngettext("Connected: %(count)s folder.", "Connected: %(count)s folders.", len(folders))
            return ConnectionReport(True, text % {"count": len(folders)}, "", folders, session.capabilities)
    except ImapAuthError as exc:
        return ConnectionReport(False, str(exc), "auth")
    except ImapConnectError as exc:
        return ConnectionReport(False, str(exc), exc.kind)
    except ImapError as exc:
        return ConnectionReport(False, str(exc), "protocol")
