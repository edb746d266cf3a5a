"""A private Cyrus IMAP on loopback: the suite's second real IMAP server, beside Dovecot (local_dovecot.py).

Why a second server: Dovecot alone lets the sync lean on one server's habits. Cyrus differs where it
matters (docs/notes/cyrus.md): the hierarchy separator is "/" (Dovecot's here: "."), every folder of
a user lives below INBOX ("INBOX/Archive"; Dovecot: "Archive"), UIDVALIDITY comes from a clock, and
the same server can be told to hide CONDSTORE, so the sync's FLAGS sweep runs on a real server too.
Plain Python (no Django, no pytest), in the shape of local_dovecot.py; tests/plugins/imap_servers.py
wraps it in fixtures.

Facts this module relies on (Debian 12, Cyrus 3.6.1):

* Debian's ``cyrus-imapd`` and ``dovecot-imapd`` conflict (both provide ``imap-server``): installing one
  removes the other. So only ``cyrus-common`` (cyrmaster, ctl_cyrusdb, the libraries) is installed,
  and the ``imapd`` binary is unpacked from ``apt-get download cyrus-imapd`` into
  ``/opt/cyrus-imapd`` (.ci/run does it); an installed cyrus-imapd is used if present.
* Everything lives in one temp dir: imapd.conf, cyrus.conf, the config directory, the spool and a
  sasldb with the users' passwords. ``cyrmaster -C imapd.conf -M cyrus.conf`` runs in the foreground
  as our child in its own session, so :meth:`stop` can signal the master and every imapd at once.
* As root, cyrmaster switches to the ``cyrus`` user (Debian's, group ``mail``), which must own the
  directory; as a normal user, ``cyrus_user``/``cyrus_group`` name that user and it runs as itself.
* Cyrus logs only to syslog: with no syslog daemon (this machine, CI) its messages are lost, and
  ``master.log`` holds only what cyrmaster writes to stdout/stderr.
* imaplib sends an APPEND's literal and its closing CRLF in two writes; with Nagle's algorithm on,
  each APPEND then waits ~40 ms for a delayed ACK. The client sockets here set TCP_NODELAY
  (3 ms per APPEND instead of 45 ms).
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mailhelper.local_dovecot import LOCALHOST, free_port

CYRMASTER = "/usr/sbin/cyrmaster"
CTL_CYRUSDB = "/usr/lib/cyrus/bin/ctl_cyrusdb"
SASLPASSWD = "/usr/sbin/saslpasswd2"
#: Where .ci/run unpacks Debian's cyrus-imapd (it cannot be installed beside dovecot-imapd).
UNPACKED_IMAPD = "/opt/cyrus-imapd/usr/lib/cyrus/bin/imapd"
IMAPD_CANDIDATES = ("/usr/lib/cyrus/bin/imapd", UNPACKED_IMAPD)
ADMIN_USER = "mhadmin"
SERVERNAME = "localhost"  # also the SASL realm of every user in the sasldb

#: Special-use folders every user gets at first login (autocreate_inbox_folders), as with Dovecot.
SPECIAL_USE_MAILBOXES: dict[str, str] = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Archive": "\\Archive",
    "Junk": "\\Junk",
}

#: Maildir info letters (DovecotServer.deliver's ``flags``) and the IMAP flags they stand for.
MAILDIR_TO_IMAP = {"S": "\\Seen", "R": "\\Answered", "F": "\\Flagged", "T": "\\Deleted", "D": "\\Draft"}


def find_imapd() -> str | None:
    """The imapd binary: MAILHELPER_CYRUS_IMAPD, an installed cyrus-imapd, or the unpacked one."""
    candidates = [os.environ.get("MAILHELPER_CYRUS_IMAPD", ""), *IMAPD_CANDIDATES]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


@dataclass(frozen=True)
class CyrusUser:
    """Credentials of one Cyrus test user; its INBOX is the admin's ``user/<username>``."""

    username: str
    password: str

    @property
    def mailbox(self) -> str:
        return f"user/{self.username}"


@dataclass(frozen=True)
class SavedMessage:
    raw: bytes
    flags: tuple[str, ...]
    internaldate: str


@dataclass
class CyrusServer:
    """A private Cyrus IMAP on 127.0.0.1 with two plain IMAP listeners on the same mail store.

    ``port`` offers what Cyrus offers (CONDSTORE, QRESYNC, MOVE, SPECIAL-USE...); ``sweep_port`` is
    the same server with CONDSTORE and QRESYNC suppressed (``suppress_capabilities``), for the
    sync's FLAGS sweep. Folder names follow Cyrus' standard namespace with the UNIX separator: ``/``
    separates, and a user's folders are INBOX's children (``folder_name("Archive") == "INBOX/Archive"``).
    """

    root: Path
    host: str = LOCALHOST
    port: int = 0
    sweep_port: int = 0
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    imapd: str = ""
    separator: str = "/"
    startup_seconds: float = field(init=False, default=0.0)
    _run_as: tuple[str, str] = field(init=False, default=("cyrus", "mail"), repr=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None, repr=False)
    _started_once: bool = field(init=False, default=False, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    _user_counter: itertools.count[int] = field(init=False, default_factory=itertools.count, repr=False)
    _connections: dict[str, imaplib.IMAP4] = field(init=False, default_factory=dict, repr=False)

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path | None = None) -> CyrusServer:
        """Prepare (but do not start) a server in ``root`` (a fresh temp dir by default).

        Not under pytest's tmp_path: its 0700 parents would keep the ``cyrus`` user out.
        """
        imapd = find_imapd()
        if not Path(CYRMASTER).exists() or imapd is None:
            raise RuntimeError(
                "Cyrus IMAP not found: apt-get install cyrus-common sasl2-bin, then unpack cyrus-imapd "
                f"(apt-get download cyrus-imapd; dpkg-deb -x cyrus-imapd_*.deb {Path(UNPACKED_IMAPD).parents[4]})"
            )
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="mailhelper-cyrus-"))
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        server = cls(root=root, imapd=imapd)
        if os.geteuid() != 0:
            server._run_as = (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
        server._pick_ports()
        server._write_files()
        return server

    def _pick_ports(self) -> None:
        self.port = free_port(self.host)
        self.sweep_port = free_port(self.host)
        while self.sweep_port == self.port:
            self.sweep_port = free_port(self.host)

    @property
    def config_path(self) -> Path:
        return self.root / "imapd.conf"

    @property
    def sasldb_path(self) -> Path:
        return self.root / "sasldb2"

    def _write_files(self) -> None:
        config_dir, spool = self.root / "conf", self.root / "spool"
        for directory in (config_dir, spool, *(config_dir / d for d in ("db", "socket", "proc", "lock", "log"))):
            directory.mkdir(parents=True, exist_ok=True)
        special = "\n".join(f"xlist-{name.lower()}: {name}" for name in SPECIAL_USE_MAILBOXES)
        run_as = "" if os.geteuid() == 0 else f"cyrus_user: {self._run_as[0]}\ncyrus_group: {self._run_as[1]}\n"
        config = f"""# Written by mailhelper/local_cyrus.py: a private test server, rewritten at every create().
configdirectory: {config_dir}
defaultpartition: default
partition-default: {spool}
proc_path: {config_dir}/proc
mboxname_lockpath: {config_dir}/lock
idlesocket: {config_dir}/socket/idle
notifysocket: {config_dir}/socket/notify
lmtpsocket: {config_dir}/socket/lmtp
servername: {SERVERNAME}
syslog_prefix: mailhelper-cyrus
{run_as}admins: {ADMIN_USER}
# What differs from the suite's Dovecot ("." separates, folders at the top): "/" separates (the UNIX
# separator; Debian's imapd.conf has "."), and a user's folders are INBOX's children (Debian's default).
altnamespace: no
unixhierarchysep: yes
virtdomains: off
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {self.sasldb_path}
sasl_mech_list: PLAIN LOGIN
# Tests try wrong passwords: no 3 s pause after each (like Dovecot's auth_failure_delay = 0 there).
failedloginpause: 0
# INBOX and the special-use folders are created at a user's first login.
autocreate_quota: 0
autocreate_inbox_folders: {" | ".join(SPECIAL_USE_MAILBOXES)}
{special}
"""
        self.config_path.write_text(config)
        sweep_config = self.root / "imapd-sweep.conf"
        sweep_config.write_text(config + "# This listener hides CONDSTORE: the sync sweeps FLAGS.\n"
                                "suppress_capabilities: CONDSTORE QRESYNC\n")  # fmt: skip
        (self.root / "cyrus.conf").write_text(
            f"""START {{
  recover cmd="{CTL_CYRUSDB} -C {self.config_path} -r"
}}
SERVICES {{
  imap cmd="{self.imapd} -C {self.config_path}" listen="{self.host}:{self.port}" prefork=0 maxchild=100
  imapsweep cmd="{self.imapd} -C {sweep_config}" listen="{self.host}:{self.sweep_port}" prefork=0 maxchild=100
}}
EVENTS {{
}}
"""
        )
        if not self.sasldb_path.exists():
            self._saslpasswd(ADMIN_USER, self.admin_password)
        self._chown_tree()

    def _chown_tree(self) -> None:
        """As root: the ``cyrus`` user owns everything it reads and writes."""
        if os.geteuid() != 0:
            return
        uid, gid = pwd.getpwnam(self._run_as[0]).pw_uid, grp.getgrnam(self._run_as[1]).gr_gid
        for directory, dirs, files in os.walk(self.root):
            os.chown(directory, uid, gid)
            for name in dirs + files:
                os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)

    def _saslpasswd(self, username: str, password: str) -> None:
        result = subprocess.run(  # noqa: S603 (our binary, our arguments)
            [SASLPASSWD, "-p", "-c", "-f", str(self.sasldb_path), "-u", SERVERNAME, username],
            input=password.encode(),
            capture_output=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"saslpasswd2 {username} failed: {result.stderr.decode(errors='replace').strip()}")

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "master.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return "--- master.log (Cyrus logs to syslog; none here) ---\n" + "\n".join(text)

    def start(self, timeout: float = 15.0) -> None:
        """Start cyrmaster and wait for both listeners; no-op if running. Ports stay across restarts."""
        if self.running:
            return
        for attempt in range(3):
            try:
                self._start_process(timeout)
            except RuntimeError:
                if self._started_once or attempt == 2:
                    raise
                self._pick_ports()  # a port taken meanwhile (free_port is racy)
                self._write_files()
            else:
                self._started_once = True
                return

    def _start_process(self, timeout: float) -> None:
        began = time.monotonic()
        self._process = subprocess.Popen(  # noqa: S603 (our binary and config paths)
            [
                CYRMASTER,
                "-C",
                str(self.config_path),
                "-M",
                str(self.root / "cyrus.conf"),
                "-p",
                str(self.root / "master.pid"),
                "-L",
                str(self.root / "master.log"),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() signals the master and every imapd
        )
        for port in (self.port, self.sweep_port):
            while not _wait_for_port(self.host, port, 0.1):
                if self._process.poll() is not None:
                    code = self._process.returncode
                    self._process = None
                    raise RuntimeError(f"cyrmaster exited during startup (code {code}).\n{self.log_tail()}")
                if time.monotonic() - began > timeout:
                    self.stop()
                    raise RuntimeError(f"Cyrus did not listen on {self.host}:{port} within {timeout}s.")
        self.startup_seconds = time.monotonic() - began

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the master and every imapd (its process group), like a server restart: clients are cut."""
        self._drop_connections()
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        # imapd children that outlived the master (busy with a client) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- users and mail -------------------------------------------------------------------------

    def add_user(self, username: str | None = None, password: str | None = None) -> CyrusUser:
        """A user in the sasldb, usable at once; its INBOX and special-use folders appear at first login."""
        with self._lock:
            number = next(self._user_counter)
        username = username or f"user{number}-{secrets.token_hex(3)}"
        password = password or secrets.token_urlsafe(12)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", username) or "\n" in password:
            # "/" is the hierarchy separator, "@" would name a realm.
            raise ValueError(f"unusable username for this Cyrus: {username!r}")
        with self._lock:
            self._saslpasswd(username, password)
        user = CyrusUser(username, password)
        self._connection(user)  # logs in once: INBOX and the special-use folders are made now
        return user

    def folder_name(self, folder: str) -> str:
        """The server's name of a folder named as on Dovecot: "Archive" -> "INBOX/Archive", "A.B" -> "INBOX/A/B"."""
        if folder.upper() == "INBOX" or folder.startswith("INBOX" + self.separator):
            return folder
        return f"INBOX{self.separator}{folder.replace('.', self.separator)}"

    def connect(self, user: CyrusUser) -> imaplib.IMAP4:
        """A new logged-in imaplib connection (TCP_NODELAY: see the module docstring)."""
        return self._login(user.username, user.password)

    def _login(self, username: str, password: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=30)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.login(username, password)
        return conn

    def admin(self) -> imaplib.IMAP4:
        """A connection as the Cyrus admin (who sees every user's ``user.<name>``)."""
        return self._login(ADMIN_USER, self.admin_password)

    def _connection(self, user: CyrusUser) -> imaplib.IMAP4:
        with self._lock:
            conn = self._connections.get(user.username)
        if conn is None:
            conn = self.connect(user)
            with self._lock:
                self._connections[user.username] = conn
        return conn

    def _drop_connections(self, username: str | None = None) -> None:
        with self._lock:
            names = [username] if username else list(self._connections)
            dropped = [self._connections.pop(name) for name in names if name in self._connections]
        for conn in dropped:
            with contextlib.suppress(Exception):
                conn.shutdown()

    def deliver(
        self,
        user: CyrusUser,
        raw_bytes: bytes,
        folder: str = "INBOX",
        flags: str | tuple[str, ...] = "",
        internaldate: datetime | None = None,
    ) -> None:
        """APPEND one message as the user (Cyrus' store cannot be written behind its back).

        ``flags`` are Maildir letters as for DovecotServer.deliver ("S", "SF") or IMAP flags; the
        folder is created if missing. imaplib turns bare LF line ends into CRLF, as IMAP requires.
        """
        if not isinstance(raw_bytes, bytes):
            raise TypeError("raw_bytes must be bytes")
        imap_flags = self._imap_flags(flags)
        mailbox = self.folder_name(folder)
        when = imaplib.Time2Internaldate(internaldate) if internaldate is not None else None
        for attempt in range(2):
            conn = self._connection(user)
            try:
                typ, data = conn.append(_quote(mailbox), imap_flags, when, raw_bytes)
                if typ != "OK" and b"TRYCREATE" in b" ".join(d for d in data if isinstance(d, bytes)):
                    conn.create(_quote(mailbox))
                    typ, data = conn.append(_quote(mailbox), imap_flags, when, raw_bytes)
            except (imaplib.IMAP4.abort, OSError):
                self._drop_connections(user.username)
                if attempt:
                    raise
                continue
            if typ != "OK":
                raise RuntimeError(f"APPEND to {mailbox} refused: {data!r}")
            return

    @staticmethod
    def _imap_flags(flags: str | tuple[str, ...]) -> str | None:
        if isinstance(flags, tuple):
            names = list(flags)
        else:
            unknown = set(flags) - set(MAILDIR_TO_IMAP)
            if unknown:
                raise ValueError(f"unknown maildir flag letters {sorted(unknown)}; use some of 'DFRST'")
            names = [MAILDIR_TO_IMAP[letter] for letter in sorted(set(flags))]
        return f"({' '.join(names)})" if names else None

    # ---- server-side events -----------------------------------------------------------------------

    def reset_uidvalidity(self, user: CyrusUser) -> None:
        """Restore the user's mailbox "from a backup": every folder anew, new UIDVALIDITY, UIDs from 1.

        Cyrus cannot be told a UIDVALIDITY, and its INBOX cannot be deleted by the user; so every
        folder's messages (flags, arrival time) are read, the admin deletes ``user/<name>`` with all
        its folders, the user's next login makes INBOX and the special-use folders again, and the
        messages are appended back in their old order.
        """
        conn = self.connect(user)
        saved: dict[str, list[SavedMessage]] = {}
        try:
            for name in _list_names(conn):
                saved[name] = _read_folder(conn, name)
        finally:
            conn.logout()
        self._drop_connections(user.username)
        admin = self.admin()
        try:
            _ok(admin.setacl(user.mailbox, ADMIN_USER, "lrswipkxtecda"), "SETACL")
            _ok(admin.delete(user.mailbox), "DELETE")
        finally:
            admin.logout()
        conn = self.connect(user)  # autocreate: INBOX and the special-use folders, new UIDVALIDITYs
        try:
            existing = set(_list_names(conn))
            for name, messages in saved.items():
                if name not in existing:
                    _ok(conn.create(_quote(name)), f"CREATE {name}")
                for message in messages:
                    flags = f"({' '.join(message.flags)})" if message.flags else None
                    _ok(conn.append(_quote(name), flags, message.internaldate, message.raw), f"APPEND {name}")
        finally:
            conn.logout()


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(response: tuple[str, list], what: str) -> list:
    typ, data = response
    if typ != "OK":
        raise RuntimeError(f"{what} refused: {data!r}")
    return data


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.+)$')


def _list_names(conn: imaplib.IMAP4) -> list[str]:
    names = []
    for line in _ok(conn.list(), "LIST"):
        match = _LIST_LINE.match(line) if isinstance(line, bytes) else None
        if match and b"\\noselect" not in match["flags"].lower():
            names.append(match["name"].decode().strip('"'))
    return names


_FETCH_META = re.compile(rb'UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE "([^"]+)"')


def _read_folder(conn: imaplib.IMAP4, name: str) -> list[SavedMessage]:
    """A folder's messages in UID order, with their flags (\\Recent left out) and INTERNALDATE."""
    _ok(conn.select(_quote(name), readonly=True), f"SELECT {name}")
    typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    messages: list[tuple[int, SavedMessage]] = []
    items = list(data or [])
    for index, part in enumerate(items):
        if not isinstance(part, tuple):
            continue
        # The items after the literal (if the server puts any there) come in the next element.
        after = items[index + 1] if index + 1 < len(items) and isinstance(items[index + 1], bytes) else b""
        uid, flags, date = 0, (), ""
        for match in _FETCH_META.finditer(part[0] + after):
            if match[1]:
                uid = int(match[1])
            elif match[2] is not None:
                flags = tuple(f for f in match[2].decode().split() if f.lower() != "\\recent")
            elif match[3]:
                date = f'"{match[3].decode()}"'
        messages.append((uid, SavedMessage(part[1], flags, date)))
    conn.close()
    return [message for _, message in sorted(messages, key=lambda item: item[0])]
