"""IMAP and SMTP connect only where core/outbound.py allows, to the address it checked.

Against the real Dovecot and SMTP sink on loopback. The default policy (no allow list) refuses them
like any loopback service, with the policy's sentence only: a live IMAP server, our Redis and a port
where nothing listens all read the same, so "Test connection" tells nothing about the network.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from core.outbound import POLICY_TEXT
from mail import imap, sending
from tests.plugins.mail import create_account


@pytest.fixture
def hostile_dns(monkeypatch):
    """A resolver for "*.rebind.test" that answers 127.0.0.1 once, then the cloud metadata address.

    It stands in for an attacker's DNS server (DNS rebinding): a client that checks one answer and
    then connects by name, looking it up again, would end up at 169.254.169.254. Other names go to
    the system's resolver. `lookups` counts the questions about rebind.test names.
    """
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if not (isinstance(host, str) and host.endswith(".rebind.test")):
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def imap_config(host: str, port: int, user=None, security: str = "plain") -> imap.ServerConfig:
    username, password = (user.username, user.password) if user else ("u", "p")
    return imap.ServerConfig(host, port, security, username, password, timeout=3)


def redis_address(settings) -> tuple[str, int]:
    redis = urlsplit(settings.REDIS_URL)
    return redis.hostname, redis.port


# --------------------------------------------------------------------------------------------------
# IMAP
# --------------------------------------------------------------------------------------------------


def test_imap_check_refuses_redis_metadata_and_loopback_with_the_policy_sentence_only(
    default_policy, dovecot, imap_user
):
    for host, port in [redis_address(default_policy), ("169.254.169.254", 993), (dovecot.host, dovecot.port)]:
        report = imap.check_connection(imap_config(host, port, imap_user))
        assert (report.ok, report.kind, report.message) == (False, "policy", POLICY_TEXT), (host, port)


def test_imap_private_hosts_need_the_operator(default_policy):
    report = imap.check_connection(imap_config("10.255.255.1", 143))
    assert report.message == POLICY_TEXT


def test_imap_connects_to_the_checked_address_and_looks_the_name_up_once(settings, dovecot, imap_user, hostile_dns):
    with imap.ImapSession(imap_config("imap.rebind.test", dovecot.port, imap_user)) as session:
        assert session.client.socket().getpeername() == ("127.0.0.1", dovecot.port)
        assert session.list_folders()
    assert hostile_dns == ["imap.rebind.test"]


def test_imaps_verifies_the_certificate_for_the_name_not_the_checked_ip(settings, dovecot, imap_user, hostile_dns):
    """Dovecot's certificate names localhost and 127.0.0.1: right for the IP, wrong for rebind.test."""
    settings.MAILHELPER_EXTRA_CA_FILE = str(dovecot.cert_path)
    wrong_name = imap.check_connection(imap_config("imap.rebind.test", dovecot.ssl_port, imap_user, "ssl"))
    assert (wrong_name.ok, wrong_name.kind) == (False, "tls") and "not trusted" in wrong_name.message
    right_name = imap.check_connection(imap_config("localhost", dovecot.ssl_port, imap_user, "ssl"))
    assert right_name.ok, right_name.message


def test_the_test_connection_button_shows_the_policy_sentence(default_policy, alice_client, alice, imap_user, dovecot):
    account = create_account(alice.user, imap_user, dovecot, imap_host="169.254.169.254", imap_port=993)
    html = alice_client.post(reverse("mail:account-test", args=[account.pk])).content.decode()
    assert POLICY_TEXT.replace("'", "&#x27;") in html
    assert not any(word in html.lower() for word in ("refused", "timeout", "did not answer", "tls"))


# --------------------------------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------------------------------


def smtp_config(host: str, port: int) -> sending.SmtpConfig:
    return sending.SmtpConfig(host, port, "plain", "", "", timeout=3)


def test_smtp_refuses_redis_metadata_and_the_live_sink(default_policy, smtp_sink):
    for host, port in [redis_address(default_policy), ("169.254.169.254", 25), (smtp_sink.host, smtp_sink.port)]:
        with pytest.raises(sending.SendError) as info:
            sending.deliver(smtp_config(host, port), "me@example.test", ["you@example.test"], b"Subject: x\r\n\r\nx")
        assert (info.value.kind, str(info.value)) == ("policy", POLICY_TEXT), (host, port)
    assert smtp_sink.messages == []


def test_smtp_delivers_through_an_allowed_name(settings, smtp_sink, hostile_dns):
    raw = b"Subject: allowed\r\n\r\nhello\r\n"
    config = smtp_config("smtp.rebind.test", smtp_sink.port)
    assert sending.deliver(config, "me@example.test", ["you@example.test"], raw) == {}
    [delivered] = smtp_sink.wait_for_messages(1)
    assert delivered.rcpt_tos == ["you@example.test"]
    assert hostile_dns == ["smtp.rebind.test"]
