"""Two real IMAP servers for the sync tests: the session's Dovecot and a Cyrus (mailhelper/local_cyrus.py).

A test that takes ``mail_server`` (and ``mail_user``, ``server_account``) runs once per server:

* ``dovecot``: Dovecot 2.3, "." separator, folders at the top ("Archive"), CONDSTORE;
* ``cyrus``: Cyrus 3.6, "/" separator, every folder below INBOX ("INBOX/Archive"), CONDSTORE;
* ``cyrus-sweep``: the same Cyrus on a listener that hides CONDSTORE and QRESYNC, so the sync
  sweeps FLAGS. Only where that path matters (flags, expunge, resets, the write-back), by
  ``@pytest.mark.parametrize("mail_server", ALL_SERVERS, indirect=True)``.

:class:`MailServer` is the little the tests need of either: where it listens, a user, delivery,
a folder's name on that server and a UIDVALIDITY reset. Flags, expunges, moves, renames and
deletes are done by IMAP as the user (tests/plugins/imap_helpers.py), the same on both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from mailhelper.local_cyrus import CyrusServer, CyrusUser
from mailhelper.local_dovecot import DovecotServer, ImapUser

SERVERS = ["dovecot", "cyrus"]
ALL_SERVERS = ["dovecot", "cyrus", "cyrus-sweep"]


@dataclass
class MailServer:
    """One of the suite's IMAP servers as the sync tests see it."""

    kind: str
    server: DovecotServer | CyrusServer
    port: int
    condstore: bool

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def separator(self) -> str:
        return self.server.separator if isinstance(self.server, CyrusServer) else "."

    def add_user(self) -> ImapUser | CyrusUser:
        return self.server.add_user()

    def folder(self, name: str) -> str:
        """The server's name of a folder: "Archive" on Dovecot, "INBOX/Archive" on Cyrus."""
        if isinstance(self.server, CyrusServer):
            return self.server.folder_name(name)
        return name

    def deliver(
        self, user, raw: bytes, folder: str = "INBOX", flags: str = "", internaldate: datetime | None = None
    ) -> None:
        """A new message: a Maildir file on Dovecot, an APPEND on Cyrus (flags as Maildir letters)."""
        self.server.deliver(user, raw, folder=folder, flags=flags, internaldate=internaldate)

    def reset_uidvalidity(self, user) -> None:
        """The server renumbers INBOX under a new UIDVALIDITY, as after a restore from a backup.

        Dovecot: its uidlist rewritten (UIDs + 1000); Cyrus: the whole mailbox deleted and restored
        by IMAP (UIDs from 1 again), see CyrusServer.reset_uidvalidity.
        """
        if isinstance(self.server, CyrusServer):
            self.server.reset_uidvalidity(user)
        else:
            dovecot_reset_uidvalidity(user)


def dovecot_reset_uidvalidity(user: ImapUser) -> None:
    """Make Dovecot renumber INBOX: a new UIDVALIDITY and new UIDs (+ 1000)."""
    maildir = user.maildir
    uidlist = maildir / "dovecot-uidlist"
    lines = uidlist.read_text().splitlines()
    header = lines[0]
    validity = int(re.search(r" V(\d+)", header).group(1))
    next_uid = int(re.search(r" N(\d+)", header).group(1))
    header = re.sub(r" V\d+", f" V{validity + 77}", header)
    header = re.sub(r" N\d+", f" N{next_uid + 1000}", header)
    body = [f"{int(line.split(' ', 1)[0]) + 1000} {line.split(' ', 1)[1]}" for line in lines[1:]]
    uidlist.write_text("\n".join([header, *body]) + "\n")
    for name in os.listdir(maildir):
        if name.startswith("dovecot.index"):
            (maildir / name).unlink()


@pytest.fixture(scope="session")
def cyrus() -> Iterator[CyrusServer]:
    """A running Cyrus for the whole session (starts in ~0.03 s); stopped and removed at the end."""
    server = CyrusServer.create()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def cyrus_user(cyrus: CyrusServer) -> CyrusUser:
    """A fresh user on the session Cyrus (INBOX and special-use folders made), restarting it if a test stopped it."""
    if not cyrus.running:
        cyrus.start()
    return cyrus.add_user()


@pytest.fixture(params=SERVERS)
def mail_server(request) -> MailServer:
    """The test's IMAP server: each test taking it runs on Dovecot and on Cyrus (see the module docstring)."""
    kind = request.param
    if kind == "dovecot":
        server = request.getfixturevalue("dovecot")
        if not server.running:
            server.start()
        return MailServer(kind, server, server.port, condstore=True)
    server = request.getfixturevalue("cyrus")
    if not server.running:
        server.start()
    if kind == "cyrus-sweep":
        return MailServer(kind, server, server.sweep_port, condstore=False)
    return MailServer(kind, server, server.port, condstore=True)


@pytest.fixture
def mail_user(mail_server: MailServer):
    """A fresh user on the test's server."""
    return mail_server.add_user()


@pytest.fixture
def server_account(alice, mail_user, mail_server):
    """Alice's account on the test's server (plain IMAP on its port)."""
    from tests.plugins.mail import create_account

    return create_account(alice.user, mail_user, mail_server)


__all__ = ["ALL_SERVERS", "SERVERS", "MailServer", "cyrus", "cyrus_user", "mail_server", "mail_user", "server_account"]
