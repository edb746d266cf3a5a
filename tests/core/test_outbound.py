"""The outbound policy (core/outbound.py) on real sockets and the system's own resolver.

Addresses are IP literals or names in /etc/hosts ("localhost"), so nothing here needs the internet:
a public address is only resolved and checked, never connected to. tests/settings.py allows
127.0.0.1 for the suite's servers; the `default_policy` fixture (tests/conftest.py) takes that away.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from core import outbound
from core.checks import outbound_allow_list_parses

PUBLIC = "93.184.215.14"  # a global address: resolved and checked, never connected to


@pytest.fixture
def listener():
    """A loopback TCP listener (it accepts, it never speaks)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    yield sock
    sock.close()


def refused(host: str, port: int) -> bool:
    try:
        outbound.resolve(host, port)
    except outbound.PolicyRefused as exc:
        assert str(exc) == outbound.POLICY_TEXT  # the sentence and nothing more
        return True
    return False


def test_the_default_refuses_our_redis_and_the_cloud_metadata_address(default_policy):
    redis = urlsplit(default_policy.REDIS_URL)
    assert refused(redis.hostname, redis.port)
    assert refused("169.254.169.254", 80)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "2130706433",  # 127.0.0.1 as one number, which the resolver accepts
        "localhost",  # a name that resolves to a forbidden address
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "169.254.0.1",
        "fe80::1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "240.0.0.1",
        "192.0.2.1",  # documentation range: not globally routable
    ],
)
def test_loopback_link_local_and_reserved_addresses_are_refused_even_with_private_hosts_on(default_policy, host):
    default_policy.MAILHELPER_ALLOW_PRIVATE_HOSTS = True
    assert refused(host, 993)


@pytest.mark.parametrize("host", ["10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.20", "100.64.0.1", "fd00::1"])
def test_private_ranges_only_when_the_operator_allows_them(default_policy, host):
    assert refused(host, 993)
    default_policy.MAILHELPER_ALLOW_PRIVATE_HOSTS = True
    assert outbound.resolve(host, 993).addresses == (host,)


def test_a_public_address_is_allowed_and_returned_as_checked(default_policy):
    destination = outbound.resolve(PUBLIC, 443)
    assert (destination.host, destination.port, destination.addresses) == (PUBLIC, 443, (PUBLIC,))
    assert not refused("172.32.0.1", 993)  # just outside 172.16/12


def test_own_services_are_refused_on_every_port_even_when_public_or_private_hosts_are_allowed(default_policy):
    default_policy.MAILHELPER_ALLOW_PRIVATE_HOSTS = True
    default_policy.CELERY_BROKER_URL = "redis://10.9.8.7:6379/0"
    default_policy.REDIS_URL = "redis://8.8.4.4:6379/0"
    for port in (6379, 993, 25):
        assert refused("10.9.8.7", port) and refused("8.8.4.4", port)
    assert refused("::ffff:10.9.8.7", 993)
    assert not refused("10.9.8.6", 993) and not refused("8.8.8.8", 993)


def test_the_allow_list_takes_hosts_ips_cidrs_and_ports(default_policy):
    default_policy.MAILHELPER_OUTBOUND_ALLOW = ["127.0.0.1:2525", "169.254.7.0/24", "localhost:993", "[::1]:143"]
    assert not refused("127.0.0.1", 2525) and refused("127.0.0.1", 6379)
    assert not refused("169.254.7.9", 80) and refused("169.254.169.254", 80)
    assert not refused("localhost", 993) and refused("127.0.0.1", 993)  # a name entry allows that name only
    assert not refused("::1", 143) and refused("::1", 993)


@pytest.mark.parametrize("entry", ["x:y", "mail.lan:99999", "[::1]x", "mail lan", "10.0.0.0/33:25"])
def test_a_malformed_allow_entry_fails_loudly_naming_the_setting(default_policy, entry):
    with pytest.raises(ImproperlyConfigured, match="MAILHELPER_OUTBOUND_ALLOW"):
        outbound.parse_allow_entry(entry)
    default_policy.MAILHELPER_OUTBOUND_ALLOW = ["mail.lan:993", entry]
    [error] = outbound_allow_list_parses(None)
    assert error.id == "core.E001"


def test_a_name_that_does_not_resolve_keeps_the_resolver_error(default_policy):
    with pytest.raises(socket.gaierror):
        outbound.resolve("no-such-host.invalid", 993)


def test_connect_goes_to_the_checked_address(settings, listener):
    settings.MAILHELPER_OUTBOUND_ALLOW = ["127.0.0.1"]
    port = listener.getsockname()[1]
    checked = outbound.resolve("localhost", port).addresses
    with outbound.connect("localhost", port, timeout=2) as sock:
        assert sock.getpeername()[0] in checked and sock.getpeername() == ("127.0.0.1", port)


def test_connect_refuses_before_opening_anything(default_policy, listener):
    listener.settimeout(0.3)
    with pytest.raises(outbound.PolicyRefused):
        outbound.connect("127.0.0.1", listener.getsockname()[1], timeout=2)
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody knocked


def test_the_http_transport_refuses_a_forbidden_url(default_policy):
    client = httpx.Client(transport=outbound.HTTPTransport(), trust_env=False)
    with client, pytest.raises(outbound.PolicyRefused):
        client.get("http://169.254.169.254/latest/meta-data/")
