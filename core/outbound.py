"""Where the server may connect to: one resolve-and-check for every outbound connection.

Users choose the IMAP and SMTP hosts and the language-model base URL, so unchecked the server would
connect wherever it is told: to its own PostgreSQL and Redis, to the cloud metadata service, into the
private network it runs in; and the precise errors of "Test connection" ("refused", "TLS failed",
"timeout") would map that network port by port. Every client (mail/imap.py, mail/sending.py, the
providers' HTTP in analysis/providers/base.py) therefore connects through this module:

* ``resolve(host, port)`` looks the name up once (``socket.getaddrinfo``) and checks every address it
  gets; if any one is forbidden, the whole name is refused. It returns the checked addresses, and the
  caller connects to those, never to the name again: a DNS answer that changes between the check and
  the connect (DNS rebinding) cannot slip a forbidden address in. The name itself stays the caller's
  for TLS (SNI and certificate verification).
* ``connect(host, port, timeout)`` is that plus a TCP connection to the first checked address that
  answers, as ``socket.create_connection`` would; ``HTTPTransport`` does the same for httpx.
* A refusal raises ``PolicyRefused``, whose text is ``POLICY_TEXT`` and nothing more: not whether
  anything listens there, nor which rule refused it.

The policy, first match wins (settings, documented in deploy/env.example):

1. An entry of ``MAILHELPER_OUTBOUND_ALLOW`` (host names, IPs, CIDRs, each optionally with ":port")
   allows the address: the operator's explicit exception beats every rule below.
2. The addresses of the project's own services (the hosts of DATABASES, CACHES, REDIS_URL and
   CELERY_BROKER_URL) are refused on every port: a machine running our database is nobody's mail server.
3. Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are allowed only with
   ``MAILHELPER_ALLOW_PRIVATE_HOSTS`` (self-hosters with a mail server on their LAN turn it on).
4. Loopback, link-local (169.254/16 with the cloud metadata address, fe80::/10), unspecified,
   multicast, reserved and every other address that is not globally routable are refused.
5. Everything else (the public internet) is allowed.

IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d, 6to4 2002::/16, NAT64 64:ff9b::/96) are
judged as that IPv4 address as well, so ::ffff:127.0.0.1 is loopback like 127.0.0.1.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop

POLICY_TEXT = gettext_noop("this address is not allowed by the server's policy")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")

PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Own services' addresses are looked up again after this long: a container's address can change.
_SERVICES_TTL = 60.0


class PolicyRefused(Exception):
    """The destination is not allowed. ``str(exc)`` is POLICY_TEXT, fit to show as it is."""

    def __init__(self) -> None:
        super().__init__(POLICY_TEXT)


@dataclass(frozen=True)
class Destination:
    """A host name and port whose addresses were all checked; connect to ``addresses`` only."""

    host: str
    port: int
    addresses: tuple[str, ...]  # IP literals, in the resolver's order

    def first_connected(self, open_one: Callable[[str], T], errors: tuple[type[Exception], ...] = (OSError,)) -> T:
        """``open_one(ip)`` for each checked address in turn until one succeeds; else the last error."""
        last: Exception | None = None
        for address in self.addresses:
            try:
                return open_one(address)
            except errors as exc:
                last = exc
        assert last is not None  # resolve() never returns a Destination without addresses
        raise last


# --------------------------------------------------------------------------------------------------
# The allow list
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowRule:
    """One entry of MAILHELPER_OUTBOUND_ALLOW: a host name or a network, optionally one port."""

    name: str = ""
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, address: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address.version == self.network.version and address in self.network
        return _normal_name(host) == self.name


def parse_allow_entry(entry: str) -> AllowRule:
    """One allow-list entry: "mail.lan", "10.0.0.5", "10.0.0.0/24", "mail.lan:993", "[fd00::1]:993", "fd00::/8".

    Raises ImproperlyConfigured naming the setting (and the entry: it is an address, not a secret).
    """
    text, port = entry.strip(), None
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise _bad_entry(entry)
        text, port = inner, _port(rest[1:], entry) if rest else None
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
        port = _port(port_text, entry)
    try:
        return AllowRule(network=ipaddress.ip_network(text, strict=False), port=port)
    except ValueError:
        pass
    name = _normal_name(text)
    if not name or any(not (c.isalnum() or c in "-._") for c in name):
        raise _bad_entry(entry)
    return AllowRule(name=name, port=port)


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _bad_entry(entry)
    return int(text)


def _bad_entry(entry: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"MAILHELPER_OUTBOUND_ALLOW: {entry.strip()!r} is not a host name, IP address or CIDR "
        "(optionally followed by :port, with IPv6 in brackets: [fd00::1]:993)"
    )


def allow_rules() -> tuple[AllowRule, ...]:
    return tuple(parse_allow_entry(entry) for entry in settings.MAILHELPER_OUTBOUND_ALLOW if entry.strip())


# --------------------------------------------------------------------------------------------------
# The project's own services
# --------------------------------------------------------------------------------------------------


def service_hosts() -> set[str]:
    """Host names and IPs of the database, the caches, Redis and the Celery broker, from the settings."""
    hosts = {str(db.get("HOST") or "") for db in settings.DATABASES.values()}
    urls: list[str] = [getattr(settings, "REDIS_URL", ""), getattr(settings, "CELERY_BROKER_URL", "") or ""]
    for cache in settings.CACHES.values():
        location = cache.get("LOCATION") or ""
        urls += [location] if isinstance(location, str) else list(location)
    for url in urls:
        for part in str(url).split(";"):  # kombu accepts "url1;url2" for failover
            try:
                hosts.add(urlsplit(part.strip()).hostname or "")
            except ValueError:
                continue
    return {h for h in hosts if h and not h.startswith("/")}  # "/..." is a Unix socket directory


_services_cache: dict[frozenset[str], tuple[float, frozenset[IPAddress]]] = {}


def service_addresses() -> frozenset[IPAddress]:
    """Every address the own services' host names resolve to (looked up at most once a minute)."""
    hosts = frozenset(service_hosts())
    cached = _services_cache.get(hosts)
    if cached is not None and time.monotonic() - cached[0] < _SERVICES_TTL:
        return cached[1]
    found: set[IPAddress] = set()
    for host in hosts:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue  # a name we cannot resolve cannot be reached through that name either
        for info in infos:
            found.update(_forms(ipaddress.ip_address(_strip_scope(info[4][0]))))
    result = frozenset(found)
    _services_cache.clear()
    _services_cache[hosts] = (time.monotonic(), result)
    return result


# --------------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------------


def is_allowed(host: str, address: IPAddress, port: int) -> bool:
    """The policy of the module docstring for one resolved address of ``host``."""
    forms = _forms(address)
    if any(rule.matches(host, form, port) for rule in allow_rules() for form in forms):
        return True
    if not service_addresses().isdisjoint(forms):
        return False
    return all(_allowed_by_range(form) for form in forms)


def _allowed_by_range(address: IPAddress) -> bool:
    if address.is_loopback or address.is_link_local or address.is_unspecified:
        return False
    if address.is_multicast or address.is_reserved:
        return False
    if any(address.version == net.version and address in net for net in PRIVATE_NETWORKS):
        return bool(settings.MAILHELPER_ALLOW_PRIVATE_HOSTS)
    return address.is_global


def _forms(address: IPAddress) -> list[IPAddress]:
    """The address, plus the IPv4 address an IPv6 one carries (mapped, 6to4, NAT64)."""
    forms: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            forms.append(embedded)
    return forms


def _strip_scope(literal: str) -> str:
    return literal.partition("%")[0]  # "fe80::1%eth0" -> "fe80::1"


def _normal_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def resolve(host: str, port: int) -> Destination:
    """Look ``host`` up once and check every address; PolicyRefused if any one is forbidden.

    A name that does not resolve raises ``socket.gaierror`` as socket.create_connection would, so
    callers keep their "could not be found" message.
    """
    name = _normal_name(host)
    if not name:
        raise PolicyRefused
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        literal = _strip_scope(sockaddr[0])
        if not is_allowed(name, ipaddress.ip_address(literal), port):
            raise PolicyRefused
        if literal not in addresses:
            addresses.append(literal)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return Destination(host=host, port=port, addresses=tuple(addresses))


def connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to a checked address of ``host`` (the first that answers)."""
    destination = resolve(host, port)
    return destination.first_connected(lambda address: socket.create_connection((address, port), timeout))


# --------------------------------------------------------------------------------------------------
# httpx
# --------------------------------------------------------------------------------------------------


class _CheckedBackend(httpcore.SyncBackend):
    """httpcore's own TCP connect, given a checked IP instead of the name.

    httpcore takes the TLS server name from the URL, not from what the backend connected to, so SNI
    and certificate checks still use the name.
    """

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore.NetworkStream:
        connect = super().connect_tcp
        return resolve(host, port).first_connected(
            lambda address: connect(address, port, timeout, local_address, socket_options),
            errors=(httpcore.ConnectError, httpcore.ConnectTimeout),
        )


class HTTPTransport(httpx.HTTPTransport):
    """An httpx transport whose every connection (redirect targets included) goes through ``resolve``.

    Use with ``httpx.Client(transport=HTTPTransport(), trust_env=False)``: an HTTP(S)_PROXY from the
    environment would otherwise get a transport of its own and connect past the check.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(trust_env=False)
        # httpx has no option for httpcore's network backend, so the pool httpx just made (no
        # connection yet) is replaced by one with the same certificates and the checked backend.
        # A caller may pass its own context (mail's, which adds MAILHELPER_EXTRA_CA_FILE).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            keepalive_expiry=5.0,
            network_backend=_CheckedBackend(),
        )


# httpx logs every request URL at INFO (and httpcore more at DEBUG). The URLs this server requests
# may carry credentials (a provider's "?api-key=...") or a recipient's token (an unsubscribe link),
# so while a caller says so, those records are dropped; the caller logs what happened without the URL.
_QUIET_HTTP_LOGS: contextvars.ContextVar[bool] = contextvars.ContextVar("quiet_http_logs", default=False)


class _DropWhileQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET_HTTP_LOGS.get()


for _name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_DropWhileQuiet())


@contextmanager
def quiet_http_logs() -> Iterator[None]:
    """Within the block, httpx and httpcore log nothing (in this thread or task only)."""
    token = _QUIET_HTTP_LOGS.set(True)
    try:
        yield
    finally:
        _QUIET_HTTP_LOGS.reset(token)
