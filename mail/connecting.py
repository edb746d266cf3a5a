"""What IMAP (mail/imap.py), POP3 (mail/pop3.py) and SMTP (mail/sending.py) connections share.

Both trust the same certificates (the system's, plus MAILHELPER_EXTRA_CA_FILE for a self-hosted
server with its own CA), and both fail the same ways before their protocols differ: the server's
policy refuses the address (core/outbound.py), the name does not resolve, the port refuses, TLS does
not verify or handshake, the server does not answer. One wording for both, naming the protocol so the
user knows which of an account's two servers to fix. Messages never include a password or any mail
content, and a refused address gets the policy's sentence alone: nothing about what listens there.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext_noop

from core.outbound import PolicyRefused
from core.stored_text import Text


@dataclass(frozen=True)
class ServerConfig:
    """Where and how to log in to an incoming-mail server (IMAP or POP3); no secret in a repr.

    With an ``oauth_token`` the login is SASL OAUTHBEARER or XOAUTH2 with it (IMAP only), not the password.
    """

    host: str
    port: int
    security: str  # "ssl" | "starttls" | "plain"
    username: str
    password: str = field(repr=False)
    timeout: float = 30.0
    oauth_token: str = field(default="", repr=False)


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.MAILHELPER_EXTRA_CA_FILE:
        context.load_verify_locations(cafile=settings.MAILHELPER_EXTRA_CA_FILE)
    return context


def describe_connect_error(exc: BaseException, host: str, port: int, protocol: str) -> tuple[str, Text] | None:
    """(kind, message) for a policy, DNS, refused, TLS or timeout failure; None for anything else.

    The message is a Text: a page shows it in its language, a worker stores it (core.stored_text)."""
    where = f"{host}:{port}"
    if isinstance(exc, PolicyRefused):
        return "policy", Text(str(exc))
    if isinstance(exc, socket.gaierror):
        text = gettext_noop("The %(protocol)s server name %(host)s could not be found (DNS lookup failed).")
        return "dns", Text(text, protocol=protocol, host=repr(host))
    if isinstance(exc, ConnectionRefusedError):
        text = gettext_noop("%(where)s refused the connection: check the %(protocol)s host, port and security.")
        return "refused", Text(text, where=where, protocol=protocol)
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = gettext_noop("The TLS certificate of %(where)s is not trusted (%(reason)s).")
        return "tls", Text(text, where=where, reason=str(exc.verify_message))
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or "handshake error"
        text = gettext_noop("TLS with %(where)s failed (%(reason)s): check the %(protocol)s port and security.")
        return "tls", Text(text, where=where, reason=str(reason), protocol=protocol)
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout", Text(gettext_noop("%(where)s did not answer in time."), where=where)
    return None
