"""Talking to the test IMAP servers (Dovecot, Cyrus) from the tests' side with the standard library, not the product."""

from __future__ import annotations

import imaplib
import re


def connect(dovecot, user) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    conn.login(user.username, user.password)
    return conn


def server_flags(dovecot, user, folder: str = "INBOX") -> dict[int, set[str]]:
    conn = connect(dovecot, user)
    try:
        conn.select(folder, readonly=True)
        typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
        result = {}
        for line in data:
            if not line:
                continue
            text = line.decode() if isinstance(line, bytes) else line[0].decode()
            m = re.search(r"UID (\d+) FLAGS \(([^)]*)\)", text) or re.search(r"FLAGS \(([^)]*)\) UID (\d+)", text)
            if m:
                if m.re.pattern.startswith("UID"):
                    result[int(m.group(1))] = set(m.group(2).split())
                else:
                    result[int(m.group(2))] = set(m.group(1).split())
        return result
    finally:
        conn.logout()


def store(dovecot, user, uids: list[int], command: str, flags: str, folder: str = "INBOX") -> None:
    conn = connect(dovecot, user)
    try:
        conn.select(folder)
        conn.uid("STORE", ",".join(map(str, uids)), command, flags)
    finally:
        conn.logout()


def expunge(dovecot, user, uids: list[int], folder: str = "INBOX") -> None:
    conn = connect(dovecot, user)
    try:
        conn.select(folder)
        conn.uid("STORE", ",".join(map(str, uids)), "+FLAGS.SILENT", r"(\Deleted)")
        conn.expunge()
    finally:
        conn.logout()


def message_count(dovecot, user, folder: str = "INBOX") -> int:
    conn = connect(dovecot, user)
    try:
        typ, data = conn.select(folder, readonly=True)
        return int(data[0])
    finally:
        conn.logout()


def subjects(dovecot, user, folder: str = "INBOX") -> list[str]:
    conn = connect(dovecot, user)
    try:
        conn.select(folder, readonly=True)
        typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)]
    finally:
        conn.logout()


def move(server, user, uids: list[int], destination: str, folder: str = "INBOX") -> None:
    """UID MOVE (RFC 6851), as another mail client would; both suite servers offer it."""
    conn = connect(server, user)
    try:
        conn.select(folder)
        typ, data = conn.uid("MOVE", ",".join(map(str, uids)), destination)
        assert typ == "OK", data
    finally:
        conn.logout()


def rename_folder(server, user, old: str, new: str) -> None:
    conn = connect(server, user)
    try:
        typ, data = conn.rename(old, new)
        assert typ == "OK", data
    finally:
        conn.logout()


def delete_folder(server, user, name: str) -> None:
    """DELETE; a special-use folder Cyrus protects (specialuse_protect) loses its special use first."""
    conn = connect(server, user)
    try:
        typ, data = conn.delete(name)
        if typ != "OK" and b"SPECIAL-USE" in b" ".join(data):
            imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))
            conn._simple_command("SETMETADATA", f'"{name}"', "(/private/specialuse NIL)")
            typ, data = conn.delete(name)
        assert typ == "OK", data
    finally:
        conn.logout()


def folder_names(server, user) -> list[str]:
    conn = connect(server, user)
    try:
        typ, data = conn.list()
        return [line.decode().rsplit(" ", 1)[-1].strip('"') for line in data if line]
    finally:
        conn.logout()
