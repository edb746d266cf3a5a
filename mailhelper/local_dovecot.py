"""A private Dovecot (IMAP and POP3) on loopback: for the tests, the benchmarks and `make demo`.

Why real servers: the product talks IMAP (CONDSTORE/QRESYNC, special-use folders, IDLE) and POP3,
and fakes drift from what real servers do. Dovecot starts in well under a second, so one instance per
test session is cheap; each test gets its own user and Maildir (``add_user``) so tests stay apart.
This module is plain Python (no Django, no pytest): tests/plugins/mailservers.py wraps it in fixtures,
bench/ and the demo (mailhelper/demo/) use it directly. It lives in the product because the demo
ships with it; nothing in a request or a worker imports it.

Facts this module relies on (see /work/shared/notes/dovecot.md):

* Run as root, Dovecot refuses to run login/mail processes as root, so login runs as ``dovenull``,
  internal processes as ``dovecot`` and mail processes as a dedicated system user
  (``mailhelper-test``) that owns every Maildir. Run as a normal user, every process is that user
  (no chroot for the login processes) and the Maildirs are theirs.
* Dovecot re-reads a changed ``passwd-file``, but checks it at most once per second: a user appended
  right after another login is unknown for up to a second ("Authentication failed"). So each user gets
  a passwd-file of its own (``passdb args = <dir>/%u``): a file Dovecot has never opened is always read
  fresh, and ``add_user`` is usable immediately without sleeping.
* After one failed login, Dovecot's anvil "auth penalty" delays every later login from the same IP
  (any user) by 2-15 s; the config disables it (``anvil-auth-penalty`` listener ``mode = 0``) and sets
  ``auth_failure_delay = 0`` (a failed login still answers after ~0.5 s, the failure-queue tick).
* ``stop()`` must kill the master's children itself: logged-in ``imap`` processes outlive the
  master otherwise (see :meth:`DovecotServer.stop`).
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

DOVECOT_BINARY = "/usr/sbin/dovecot"
MAIL_SYSTEM_USER = "mailhelper-test"
LOCALHOST = "127.0.0.1"

# Special-use mailboxes every test user gets (name -> IMAP special-use attribute).
SPECIAL_USE_MAILBOXES: dict[str, str] = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Archive": "\\Archive",
    "Junk": "\\Junk",
}

# Maildir info flags (the letters after ":2,"), as documented by Dovecot / the maildir spec.
MAILDIR_FLAGS = frozenset("DFPRST")


# --------------------------------------------------------------------------------------------------
# Generic helpers
# --------------------------------------------------------------------------------------------------


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free right now.

    Used instead of fixed ports so parallel test runs (or a developer's own Dovecot) never collide.
    There is a small race between closing the probe socket and the server binding it; acceptable
    for tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def make_self_signed_cert(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """Create a self-signed certificate and key (valid 2 days) in ``directory``.

    The certificate carries subjectAltNames for ``localhost`` and ``127.0.0.1`` because Python's ssl
    module ignores the CN when checking hostnames: with the SANs, tests can load the certificate as
    their only CA and keep full verification on (``check_hostname=True``).

    Returns ``(cert_path, key_path)``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    subprocess.run(  # noqa: S603 (fixed arguments and our own paths)
        [  # noqa: S607 (openssl from PATH, as a shell would find it)
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
        ],
        check=True,
        capture_output=True,
    )
    return cert_path, key_path


def client_ssl_context(cert_path: Path | str) -> ssl.SSLContext:
    """An SSL context for test clients that trusts exactly the given self-signed certificate."""
    return ssl.create_default_context(cafile=str(cert_path))


def ensure_mail_system_user(name: str = MAIL_SYSTEM_USER) -> tuple[int, int]:
    """Return ``(uid, gid)`` of the non-root system user that owns test Maildirs, creating it if needed.

    Dovecot will not run mail processes as root (uid 0 is below any sane ``first_valid_uid``), so the
    Maildirs must belong to a real unprivileged user. Creating it is idempotent and race-tolerant
    (``useradd`` exit code 9 = "already exists").
    """
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid
    result = subprocess.run(  # noqa: S603 (fixed arguments)
        [  # noqa: S607 (useradd from PATH)
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 9):
        raise RuntimeError(f"useradd {name} failed ({result.returncode}): {result.stderr.strip()}")
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    """Poll until something accepts TCP connections on ``host:port``; True if it did in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def _pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie we already reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc), used to find Dovecot's log process."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []


def _pid_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# --------------------------------------------------------------------------------------------------
# Dovecot
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapUser:
    """Credentials and on-disk location of one Dovecot test user."""

    username: str
    password: str
    home: Path
    maildir: Path


@dataclass
class DovecotServer:
    """A private Dovecot instance listening on 127.0.0.1 (plain IMAP and IMAPS, plain POP3 and POP3S).

    Everything (config, runtime sockets, state, log, certificate, users' homes) lives in one temp
    directory, so the instance never touches /etc/dovecot or the system's Dovecot. The directory is
    made world-traversable because Dovecot's unprivileged processes (dovenull, dovecot and the mail
    user) must reach the passwd-files and the homes inside it.

    Use :meth:`start` / :meth:`stop` to simulate an outage; the ports stay the same across restarts.
    """

    root: Path
    host: str = LOCALHOST
    port: int = 0
    ssl_port: int = 0
    pop3_port: int = 0
    pop3_ssl_port: int = 0
    mail_uid: int = 0
    mail_gid: int = 0
    fixed_imap_port: int = 0
    #: With a URL: XOAUTH2 and OAUTHBEARER logins too, each token checked there (RFC 7662 introspection).
    oauth2_introspection_url: str = ""
    oauth2_mechanisms: str = "xoauth2 oauthbearer"
    #: Simultaneous IMAP connections to allow (one imap process each); Dovecot's default is 100.
    max_connections: int = 100
    #: (login user, internal user, internal group); a normal user's server runs everything as themselves.
    system_users: tuple[str, str, str] = ("dovenull", "dovecot", "dovecot")
    cert_path: Path = field(init=False)
    key_path: Path = field(init=False)
    config_path: Path = field(init=False)
    passwd_dir: Path = field(init=False)
    base_dir: Path = field(init=False)
    log_path: Path = field(init=False)
    startup_seconds: float = field(init=False, default=0.0)
    _started_once: bool = field(init=False, default=False, repr=False)
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    _user_counter: itertools.count[int] = field(init=False, default_factory=itertools.count, repr=False)
    _deliver_counter: itertools.count[int] = field(init=False, default_factory=itertools.count, repr=False)
    _last_stamp: tuple[int, int] = field(init=False, default=(0, 0), repr=False)

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path | None = None,
        imap_port: int = 0,
        oauth2_introspection_url: str = "",
        oauth2_mechanisms: str = "xoauth2 oauthbearer",
        max_connections: int = 100,
    ) -> DovecotServer:
        """Prepare (but do not start) a server in ``root`` (a fresh temp dir by default).

        ``imap_port`` fixes the plain IMAP port (the demo names it in its outbound allow list); the
        other listeners, and IMAP by default, take free ports. Users and Maildirs already in ``root``
        are kept: the config and certificate are written anew.

        Not under pytest's ``tmp_path_factory`` on purpose: pytest makes its base temp dir 0700,
        which Dovecot's unprivileged processes could not traverse.
        """
        if not Path(DOVECOT_BINARY).exists():
            raise RuntimeError(f"{DOVECOT_BINARY} not found: apt-get install dovecot-imapd dovecot-pop3d")
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="mailhelper-dovecot-"))
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        if os.geteuid() == 0:
            uid, gid = ensure_mail_system_user()
            server = cls(root=root, mail_uid=uid, mail_gid=gid)
        else:
            # Everything runs as the calling user: login, internal and mail processes.
            me = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            server = cls(root=root, mail_uid=os.getuid(), mail_gid=os.getgid(), system_users=(me, me, group))
        server.fixed_imap_port = imap_port
        server.oauth2_introspection_url = oauth2_introspection_url
        server.oauth2_mechanisms = oauth2_mechanisms
        server.max_connections = max_connections
        server._pick_ports()
        server._write_files()
        return server

    def _pick_ports(self) -> None:
        """Choose four distinct free ports: plain IMAP, IMAPS, plain POP3 (STLS offered), POP3S."""
        chosen: list[int] = [self.fixed_imap_port] if self.fixed_imap_port else []
        while len(chosen) < 4:
            port = free_port(self.host)
            if port not in chosen:
                chosen.append(port)
        self.port, self.ssl_port, self.pop3_port, self.pop3_ssl_port = chosen

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.ssl_port, self.pop3_port, self.pop3_ssl_port)

    def _write_files(self) -> None:
        """Write the certificate, the passwd-file and homes dirs, and dovecot.conf."""
        self.cert_path, self.key_path = make_self_signed_cert(self.root / "tls")
        self.passwd_dir = self.root / "passwd.d"
        # Read by the auth process, which runs as the unprivileged "dovecot" user.
        self.passwd_dir.mkdir(exist_ok=True)
        self.passwd_dir.chmod(0o755)
        (self.root / "state").mkdir(exist_ok=True)
        homes = self.root / "home"
        homes.mkdir(exist_ok=True)
        homes.chmod(0o755)
        self._write_config()

    def _write_config(self) -> None:
        """(Re)write dovecot.conf for the current ports."""
        self.base_dir = self.root / "run"
        self.log_path = self.root / "dovecot.log"
        self.config_path = self.root / "dovecot.conf"
        mailboxes = "\n".join(
            f"  mailbox {name} {{\n    special_use = {attr}\n    auto = subscribe\n  }}"
            for name, attr in SPECIAL_USE_MAILBOXES.items()
        )
        # Only root can chroot the login processes; a normal user's server leaves them in place.
        chroot = "" if os.geteuid() == 0 else "chroot ="
        mechanisms, oauth2_passdb = "plain login", ""
        if self.oauth2_introspection_url:
            # The token is the "password" of these two mechanisms: passwd-file never sees them, the
            # oauth2 passdb asks the authorization server whether the token is active and whose it is.
            oauth2_conf = self.root / "dovecot-oauth2.conf.ext"
            oauth2_conf.write_text(
                f"introspection_mode = post\nintrospection_url = {self.oauth2_introspection_url}\n"
                "force_introspection = yes\nusername_attribute = username\n"
                "active_attribute = active\nactive_value = true\n"
            )
            oauth2_conf.chmod(0o644)
            mechanisms = f"plain login {self.oauth2_mechanisms}"
            oauth2_passdb = (
                f"passdb {{\n  driver = oauth2\n  mechanisms = {self.oauth2_mechanisms}\n  args = {oauth2_conf}\n}}\n"
            )
        self.config_path.write_text(
            f"""# Generated by mailhelper/local_dovecot.py -- a self-contained instance.
protocols = imap pop3
listen = {self.host}
base_dir = {self.base_dir}
state_dir = {self.root / "state"}
log_path = {self.log_path}
instance_name = mailhelper-test-{self.port}
# No stats service clients: a login process that starts while the master shuts down otherwise blocks
# up to 5 s waiting for the stats-writer handshake, which made stop() take 1-6 s.
stats_writer_socket_path =

default_login_user = {self.system_users[0]}
default_internal_user = {self.system_users[1]}
default_internal_group = {self.system_users[2]}
first_valid_uid = {self.mail_uid}
first_valid_gid = {self.mail_gid}

ssl = yes
ssl_cert = <{self.cert_path}
ssl_key = <{self.key_path}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
# Tests exercise wrong passwords and must not be slowed down by them: no 2 s failure delay.
auth_failure_delay = 0

passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {self.passwd_dir}/%u
}}
{oauth2_passdb}userdb {{
  driver = passwd-file
  args = {self.passwd_dir}/%u
}}

mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
{mailboxes}
}}

protocol imap {{
  mail_max_userip_connections = 100
}}
# One imap process per connection (bench/push.py holds 1,000 IDLE connections).
default_process_limit = {max(100, self.max_connections + 20)}
default_client_limit = {max(1000, 2 * self.max_connections + 100)}

# POP3 on the same Maildirs. The UIDL format is Dovecot 2.3's default, written out because the
# sync's state is these strings: UIDVALIDITY and UID in hex, stable across sessions and restarts.
protocol pop3 {{
  mail_max_userip_connections = 100
  pop3_uidl_format = %08Xu%08Xv
}}

# Disable the anvil auth penalty: otherwise, after one failed login, every later login from
# 127.0.0.1 (any user) is delayed 2-15 s. Making the socket unusable (mode 0) turns it off.
service anvil {{
  {chroot}
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}

service imap-login {{
  {chroot}
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.ssl_port}
    ssl = yes
  }}
}}

service pop3-login {{
  {chroot}
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3_ssl_port}
    ssl = yes
  }}
}}
"""
        )

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def master_pid(self) -> int | None:
        """The master's process id while it runs; its process tree is this instance's whole CPU use."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        """True while the Dovecot master process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the Dovecot log plus the master's stderr (config errors go there)."""
        parts = []
        for path in (self.log_path, self.root / "dovecot.stderr"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no dovecot log written)"

    def start(self, timeout: float = 15.0) -> None:
        """Start Dovecot and wait until both ports accept connections; no-op if already running.

        The first start retries with fresh ports if one was taken meanwhile (free_port() is racy);
        later starts (after :meth:`stop`) keep the ports, as fault tests expect.
        Raises RuntimeError with the tail of the Dovecot log if it cannot start.
        """
        if self.running:
            return
        for attempt in range(3):
            try:
                self._start_process(timeout)
            except RuntimeError as error:
                if self._started_once or attempt == 2 or "Address already in use" not in str(error):
                    raise
                self._pick_ports()
                self._write_config()
            else:
                self._started_once = True
                return

    def _start_process(self, timeout: float) -> None:
        """Run ``dovecot -F`` (foreground) as our child and wait for both listeners.

        Foreground mode keeps the master as a direct child, so :meth:`stop` can reap it and a
        failed start is noticed immediately instead of by timeout.
        """
        began = time.monotonic()
        with open(self.root / "dovecot.stderr", "ab") as stderr:
            self._process = subprocess.Popen(  # noqa: S603 (our binary and config path)
                [DOVECOT_BINARY, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        deadline = began + timeout
        for port in self.ports:
            while True:
                if self._process.poll() is not None:
                    code = self._process.returncode
                    self._process = None
                    raise RuntimeError(f"Dovecot exited during startup (code {code}).\n{self.log_tail()}")
                if _wait_for_port(self.host, port, 0.1):
                    break
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"Dovecot did not listen on {self.host}:{port} within {timeout}s.\n{self.log_tail()}"
                    )
        self.startup_seconds = time.monotonic() - began

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Dovecot like a crash/restart would: every process and every client connection goes.

        Sends SIGTERM to the pid in ``base_dir/master.pid`` and waits until the master has exited,
        so afterwards new connections are refused and :meth:`start` can run again. Two Dovecot 2.3
        behaviours are worked around (both seen on this machine):

        * ``imap`` processes with a logged-in client outlive the master (despite
          ``shutdown_clients = yes``), so old connections would keep working. We SIGTERM the
          master's children ourselves after a short grace period; clients then get
          ``* BYE Server shutting down.`` and a closed socket, as with a real server restart.
        * Once every child has exited, the master still idles ~1 s before exiting; nothing is left
          to clean up by then, so we SIGKILL it (a stop takes ~0.1 s instead of ~1.1 s).
        """
        pid_file = self.base_dir / "master.pid"
        pid: int | None = None
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(pid_file.read_text().strip())
        if pid is None and self._process is not None:
            pid = self._process.pid
        if pid is None or not self._is_our_master(pid):
            self._process = None
            return
        children = set(_child_pids(pid))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        began = time.monotonic()
        deadline = began + timeout
        # Escalation: master's own SIGTERM, then SIGTERM each child, then SIGKILL what is left.
        escalations = [(began + 0.1, signal.SIGTERM), (began + min(3.0, timeout), signal.SIGKILL)]
        while time.monotonic() < deadline:
            children.update(_child_pids(pid))  # also catch processes forked after the snapshot
            running = [child for child in children if _pid_running(child)]
            if not running:
                break
            if escalations and time.monotonic() > escalations[0][0]:
                _, sig = escalations.pop(0)
                for child in running:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, sig)
            time.sleep(0.01)
        if self._master_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            self._process.wait(timeout=5)
            self._process = None
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()

    def _is_our_master(self, pid: int) -> bool:
        """Guard against a stale master.pid whose number now belongs to an unrelated process."""
        if self._process is not None and self._process.pid == pid:
            return True
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return str(self.config_path).encode() in cmdline

    def _master_alive(self, pid: int) -> bool:
        """Whether the master is still running (reaping it if it is our child)."""
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        return _pid_alive(pid)

    def cleanup(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- users and mail -------------------------------------------------------------------------

    def add_user(self, username: str | None = None, password: str | None = None) -> ImapUser:
        """Add a user with an empty Maildir, usable for login immediately (no reload, no sleep).

        Writes a one-line passwd-file ``user:{PLAIN}password:uid:gid::home`` for this user (see the
        module docstring for why not one shared file). Usernames are unique by default so that tests
        sharing the session server stay apart.
        """
        with self._lock:
            number = next(self._user_counter)
        username = username or f"user{number}-{secrets.token_hex(3)}"
        password = password or secrets.token_urlsafe(12)
        if (
            not username
            or username.startswith(".")
            or any(c in username for c in ":/%\n\t ")
            or any(c in password for c in ":\n")
        ):
            raise ValueError(f"unusable username/password for a passwd-file: {username!r}")
        passwd_file = self.passwd_dir / username
        if passwd_file.exists():
            raise ValueError(f"user {username!r} already exists")
        home = self.root / "home" / username
        maildir = home / "Maildir"
        for directory in (home, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
            directory.mkdir(mode=0o700, exist_ok=True)
            os.chown(directory, self.mail_uid, self.mail_gid)
        line = f"{username}:{{PLAIN}}{password}:{self.mail_uid}:{self.mail_gid}::{home}\n"
        # Write-then-rename so the auth process never reads half a line.
        tmp_file = self.passwd_dir / f".{username}.tmp"
        tmp_file.write_text(line)
        tmp_file.chmod(0o644)
        os.rename(tmp_file, passwd_file)
        return ImapUser(username=username, password=password, home=home, maildir=maildir)

    def existing_user(self, username: str) -> ImapUser | None:
        """A user an earlier :meth:`add_user` made in this directory (a restarted demo), or None."""
        try:
            line = (self.passwd_dir / username).read_text().strip()
        except FileNotFoundError:
            return None
        name, password, _uid, _gid, _gecos, home = line.split(":", 5)
        home_path = Path(home)
        return ImapUser(
            username=name, password=password.removeprefix("{PLAIN}"), home=home_path, maildir=home_path / "Maildir"
        )

    def folder_path(self, user: ImapUser, folder: str = "INBOX") -> Path:
        """The Maildir++ directory of ``folder``: INBOX is the Maildir itself, "Sent" is ``.Sent``.

        Dovecot's default maildir layout uses "." as hierarchy separator, so "A.B" is ``.A.B``.
        """
        if folder.upper() == "INBOX":
            return user.maildir
        return user.maildir / f".{folder}"

    def _ensure_folder(self, user: ImapUser, folder: str) -> Path:
        """Create a Maildir++ folder (cur/new/tmp + maildirfolder marker) owned by the mail user."""
        path = self.folder_path(user, folder)
        created = not path.exists()
        for directory in (path, path / "cur", path / "new", path / "tmp"):
            if not directory.exists():
                directory.mkdir(mode=0o700)
                os.chown(directory, self.mail_uid, self.mail_gid)
        marker = path / "maildirfolder"
        if path != user.maildir and not marker.exists():
            marker.touch()
            os.chown(marker, self.mail_uid, self.mail_gid)
        if created and folder.upper() != "INBOX":
            # Subscribe it so LSUB-based clients see it too (harmless for special-use folders).
            subscriptions = user.maildir / "subscriptions"
            existing = subscriptions.read_text().splitlines() if subscriptions.exists() else []
            if folder not in existing:
                with open(subscriptions, "a") as handle:
                    handle.write(f"{folder}\n")
                os.chown(subscriptions, self.mail_uid, self.mail_gid)
        return path

    def _next_stamp(self) -> tuple[int, int]:
        """A strictly increasing (seconds, microseconds) pair for Maildir file names.

        Dovecot assigns UIDs to newly found files in file-name (timestamp) order, so strictly
        increasing names make UID order equal delivery order even for hundreds of messages.
        """
        with self._lock:
            now = time.time_ns() // 1000
            secs, usecs = divmod(now, 1_000_000)
            last_secs, last_usecs = self._last_stamp
            if (secs, usecs) <= (last_secs, last_usecs):
                secs, usecs = divmod(last_secs * 1_000_000 + last_usecs + 1, 1_000_000)
            self._last_stamp = (secs, usecs)
            return secs, usecs

    def deliver(
        self,
        user: ImapUser,
        raw_bytes: bytes,
        folder: str = "INBOX",
        flags: str = "",
        internaldate: datetime | None = None,
    ) -> Path:
        """Put one message straight into the user's Maildir, bypassing IMAP APPEND (fast seeding).

        ``flags`` are Maildir info letters: S=\\Seen, R=\\Answered, F=\\Flagged, T=\\Deleted, D=\\Draft,
        P=passed. Without flags the message goes to ``new/`` (so IMAP reports it \\Recent); with flags
        to ``cur/`` with the ``:2,<flags>`` suffix. ``internaldate`` sets the file mtime, which Dovecot
        uses as INTERNALDATE. Files are written to ``tmp/`` and renamed, as the Maildir spec requires,
        so a concurrently running Dovecot never sees half a message. Returns the final path.
        """
        if not isinstance(raw_bytes, bytes):
            raise TypeError("raw_bytes must be bytes")
        letters = "".join(sorted(set(flags)))
        unknown = set(letters) - MAILDIR_FLAGS
        if unknown:
            raise ValueError(f"unknown maildir flag letters {sorted(unknown)}; use some of 'DFPRST'")
        path = self._ensure_folder(user, folder)
        secs, usecs = self._next_stamp()
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        base = f"{secs}.M{usecs}P{os.getpid()}Q{next(self._deliver_counter)}.{host},S={len(raw_bytes)}"
        tmp_file = path / "tmp" / base
        tmp_file.write_bytes(raw_bytes)
        os.chown(tmp_file, self.mail_uid, self.mail_gid)
        tmp_file.chmod(0o600)
        if internaldate is not None:
            stamp = internaldate.timestamp()
            os.utime(tmp_file, (stamp, stamp))
        final = path / "cur" / f"{base}:2,{letters}" if letters else path / "new" / base
        os.rename(tmp_file, final)
        return final
