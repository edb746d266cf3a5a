"""Prove the Cyrus helper (mailhelper/local_cyrus.py) and its fixtures with real protocol traffic.

Only imaplib talks to the server here, so a failure points at the helper, not at product code.
No Django database needed. docs/notes/cyrus.md has the facts these tests pin down.
"""

from __future__ import annotations

import imaplib
import os
import re
import time
from contextlib import suppress
from datetime import UTC, datetime

import pytest

from mailhelper.local_cyrus import CyrusServer, CyrusUser
from tests.plugins.mailservers import run_as_nobody


def message(n: int) -> bytes:
    return f"From: a@example.test\nSubject: Cyrus {n}\nMessage-ID: <cyrus-{n}@example.test>\n\nbody {n}\n".encode()


def login(server: CyrusServer, user: CyrusUser, port: int | None = None) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(server.host, port or server.port, timeout=10)
    conn.login(user.username, user.password)
    return conn


def fetch(conn: imaplib.IMAP4, folder: str = "INBOX") -> list[tuple[int, set[str], str, bytes]]:
    """(uid, flags, INTERNALDATE, raw) per message of a folder, in UID order."""
    conn.select(f'"{folder}"', readonly=True)
    typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    rows = []
    for part in data:
        if isinstance(part, tuple):
            meta = part[0].decode()
            uid = int(re.search(r"UID (\d+)", meta).group(1))
            flags = set(re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()) - {"\\Recent"}
            rows.append((uid, flags, re.search(r'INTERNALDATE "([^"]+)"', meta).group(1), part[1]))
    return sorted(rows)


def test_a_user_gets_inbox_and_special_use_folders_below_it_with_the_slash_separator(cyrus, cyrus_user):
    conn = login(cyrus, cyrus_user)
    try:
        typ, lines = conn.list()
        listed = {line.decode().rsplit(" ", 1)[-1]: line.decode() for line in lines}
        assert set(listed) == {"INBOX", *(f"INBOX/{name}" for name in ("Drafts", "Sent", "Trash", "Archive", "Junk"))}
        assert '(\\HasNoChildren \\archive) "/" INBOX/Archive' in listed["INBOX/Archive"]
        assert conn.namespace()[1] == [b'(("INBOX/" "/")) (("user/" "/")) (("" "/"))']
    finally:
        conn.logout()


def test_wrong_password_is_refused_at_once(cyrus, cyrus_user):
    started = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error, match="authentication failure"):
        login(cyrus, CyrusUser(cyrus_user.username, "wrong"))
    assert time.monotonic() - started < 1  # failedloginpause: 0


def test_deliver_appends_with_flags_date_and_into_new_folders(cyrus, cyrus_user):
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    cyrus.deliver(cyrus_user, message(1))
    cyrus.deliver(cyrus_user, message(2), flags="SF", internaldate=when)
    cyrus.deliver(cyrus_user, message(3), folder="Archive", flags=("\\Answered", "customtag"))
    cyrus.deliver(cyrus_user, message(4), folder="Projects.2026")  # made on the way, "." read as Dovecot's separator
    conn = login(cyrus, cyrus_user)
    try:
        inbox = fetch(conn)
        assert [(uid, flags) for uid, flags, _, _ in inbox] == [(1, set()), (2, {"\\Seen", "\\Flagged"})]
        assert inbox[1][2] == " 6-May-2024 07:08:09 +0000"
        assert inbox[0][3].startswith(b"From: a@example.test\r\n")  # LF became CRLF on the way
        assert fetch(conn, "INBOX/Archive")[0][1] == {"\\Answered", "customtag"}
        assert len(fetch(conn, "INBOX/Projects/2026")) == 1
    finally:
        conn.logout()
    with pytest.raises(ValueError, match="maildir flag"):
        cyrus.deliver(cyrus_user, message(5), flags="P")


def test_hundreds_of_deliveries_are_quick_and_in_uid_order(cyrus, cyrus_user):
    started = time.monotonic()
    for n in range(200):
        cyrus.deliver(cyrus_user, message(n))
    assert time.monotonic() - started < 10  # ~3 ms each with TCP_NODELAY (45 ms without)
    conn = login(cyrus, cyrus_user)
    try:
        rows = fetch(conn)
        assert [uid for uid, *_ in rows] == list(range(1, 201))
        assert b"Subject: Cyrus 199" in rows[-1][3]
    finally:
        conn.logout()


def test_the_sweep_listener_hides_condstore_on_the_same_store(cyrus, cyrus_user):
    cyrus.deliver(cyrus_user, message(1))
    full, sweep = login(cyrus, cyrus_user), login(cyrus, cyrus_user, cyrus.sweep_port)
    try:
        offered = full.capability()[1][0].split()
        hidden = sweep.capability()[1][0].split()
        assert {b"CONDSTORE", b"QRESYNC", b"MOVE", b"SPECIAL-USE", b"UIDPLUS"} <= set(offered)
        assert b"CONDSTORE" not in hidden and b"QRESYNC" not in hidden and b"MOVE" in hidden
        assert sweep.select("INBOX", readonly=True)[1] == [b"1"]
        # SELECT still names a HIGHESTMODSEQ: the sync must go by the capability, not by this.
        assert sweep.response("HIGHESTMODSEQ")[1][0] is not None
    finally:
        full.logout()
        sweep.logout()


def test_reset_uidvalidity_restores_every_folder_under_new_uidvalidities(cyrus, cyrus_user):
    cyrus.deliver(cyrus_user, message(1), flags="S")
    cyrus.deliver(cyrus_user, message(2), internaldate=datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC))
    cyrus.deliver(cyrus_user, message(3), folder="Archive")
    conn = login(cyrus, cyrus_user)
    try:
        conn.select("INBOX", readonly=True)
        before = int(conn.response("UIDVALIDITY")[1][0])
        inbox_before = fetch(conn)
    finally:
        conn.logout()
    cyrus.reset_uidvalidity(cyrus_user)
    conn = login(cyrus, cyrus_user)
    try:
        conn.select("INBOX", readonly=True)
        assert int(conn.response("UIDVALIDITY")[1][0]) > before
        assert fetch(conn) == inbox_before  # same UIDs from 1, flags, dates and bytes
        assert len(fetch(conn, "INBOX/Archive")) == 1
    finally:
        conn.logout()
    cyrus.deliver(cyrus_user, message(4))  # delivery goes on after the reset (its cached login was dropped)


def test_stop_cuts_clients_and_start_serves_the_same_mail_on_the_same_ports(cyrus, cyrus_user):
    cyrus.deliver(cyrus_user, message(1))
    ports = (cyrus.port, cyrus.sweep_port)
    conn = login(cyrus, cyrus_user)
    conn.select("INBOX")
    cyrus.stop()
    try:
        assert not cyrus.running
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            conn.noop()
        with pytest.raises(OSError):
            imaplib.IMAP4(cyrus.host, cyrus.port, timeout=2)
    finally:
        with suppress(Exception):
            conn.shutdown()
        cyrus.start()
    assert (cyrus.port, cyrus.sweep_port) == ports
    again = login(cyrus, cyrus_user)
    try:
        assert again.select("INBOX")[1] == [b"1"]
    finally:
        again.logout()


def test_cyrus_also_runs_for_a_normal_user():
    """`make test` on a laptop: cyrmaster and imapd run as the calling user (cyrus_user in imapd.conf)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user (`nobody`)")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from mailhelper.local_cyrus import CyrusServer\n"
        "s = CyrusServer.create(); s.start()\n"
        "try:\n"
        "    u = s.add_user('someone', 'pw-someone-1'); s.deliver(u, b'Subject: hi\\r\\n\\r\\nbody\\r\\n')\n"
        "    c = s.connect(u); print(c.select('INBOX')[1]); c.logout()\n"
        "    print(sorted({p.owner() for p in s.root.rglob('*')}))\n"
        "finally:\n"
        "    s.cleanup()\n"
    )
    result = run_as_nobody(script, ("local_cyrus.py", "local_dovecot.py"))  # plain Python: loaded from a copy
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[b'1']\n['nobody']" in result.stdout
