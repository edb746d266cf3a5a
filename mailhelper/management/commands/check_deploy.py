"""`manage.py check_deploy`: one table saying whether this instance is safe and ready to serve.

Meant for the end of a deployment script (exit code 1 on any FAIL) and for "why does it not work"
moments. After the checks come WARN lines for what needs an operator on a running installation
(mailhelper.operations.alerts: accounts failing for a day, an old analysis backlog, a silent beat);
they do not change the exit code, since a fresh deployment has no beat tick yet. Every reason is one
line and never contains a secret: the sync key and SECRET_KEY are judged, not printed.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.keyring import SyncKeyError, check_sync_key_at_startup, load_sync_key
from mail import oauth
from mailhelper import health, operations

DEV_SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
MIN_SECRET_KEY_LENGTH = 50

Check = Callable[[], tuple[bool, str]]


def check_debug() -> tuple[bool, str]:
    return (False, "DEBUG is on: set DEBUG=0") if settings.DEBUG else (True, "DEBUG is off")


def check_secret_key() -> tuple[bool, str]:
    key = settings.SECRET_KEY
    if key == DEV_SECRET_KEY or key.startswith("django-insecure-"):
        return False, "SECRET_KEY is the development default"
    if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 5:
        return False, f"SECRET_KEY is too short or simple (need {MIN_SECRET_KEY_LENGTH}+ varied characters)"
    return True, "SECRET_KEY is set and long"


def check_allowed_hosts() -> tuple[bool, str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if not hosts:
        return False, "ALLOWED_HOSTS is empty"
    if "*" in hosts:
        return False, "ALLOWED_HOSTS contains '*'"
    return True, f"ALLOWED_HOSTS: {', '.join(hosts)}"


def check_secure_cookies() -> tuple[bool, str]:
    insecure = [name for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE") if not getattr(settings, name, False)]
    if insecure:
        return False, f"{' and '.join(insecure)} off: set SECURE_COOKIES=1 (HTTPS only)"
    return True, "session and CSRF cookies are HTTPS-only"


def check_sync_key() -> tuple[bool, str]:
    try:
        load_sync_key()
        check_sync_key_at_startup()
    except SyncKeyError as exc:
        return False, str(exc).splitlines()[0]
    return True, "sync key loads and matches the stored key wraps"


def check_migrations() -> tuple[bool, str]:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - database down: reported by the database check too
        return False, f"cannot read migration state ({type(exc).__name__})"
    if plan:
        return False, f"{len(plan)} migration(s) not applied: run `manage.py migrate`"
    return True, "all migrations applied"


def check_oauth() -> tuple[bool, str]:
    """Which sign-in providers are offered, and the redirect URI the operator registers with each."""
    half = [
        key
        for key, conf in settings.MAILHELPER_OAUTH_PROVIDERS.items()
        if conf.get("client_id") and key not in {p.key for p in oauth.providers()}
    ]
    if half:
        return False, f"OAuth2 provider(s) {', '.join(half)} have a client id but no authorize or token URL"
    offered = oauth.providers()
    if not offered:
        return True, "no OAuth2 sign-in provider configured (optional)"
    uri = oauth.redirect_uri()
    host = urlsplit(uri).hostname or ""
    if not uri.startswith("https://") and host not in ("localhost", "127.0.0.1"):
        return False, f"redirect URI {uri} is not https (set MAILHELPER_BASE_URL): providers refuse it"
    return True, f"sign-in with {', '.join(p.name for p in offered)}; register the redirect URI {uri}"


def _service(name: str) -> Check:
    def check() -> tuple[bool, str]:
        try:
            detail = health.CHECKS[name]()
        except Exception as exc:  # noqa: BLE001 - only the type: connection errors can hold URLs with passwords
            return False, f"{name} unreachable ({type(exc).__name__})"
        extra = f" ({detail['workers']} worker(s))" if "workers" in detail else ""
        return True, f"{name} reachable{extra}"

    return check


def checks(skip_celery: bool) -> dict[str, Check]:
    result: dict[str, Check] = {
        "debug": check_debug,
        "secret_key": check_secret_key,
        "allowed_hosts": check_allowed_hosts,
        "secure_cookies": check_secure_cookies,
        "sync_key": check_sync_key,
    }
    for name in health.CHECKS:
        if name == "celery" and skip_celery:
            continue
        result[name] = _service(name)
    result["migrations"] = check_migrations
    result["oauth"] = check_oauth
    return result


class Command(BaseCommand):
    help = "Check settings, the sync key, PostgreSQL/Redis/Celery and migrations; exit 1 if any check fails."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--skip-celery", action="store_true", help="do not require a running worker")

    def handle(self, *args, **options) -> None:
        failed = []
        width = max(len(name) for name in checks(False))
        for name, check in checks(options["skip_celery"]).items():
            ok, reason = check()
            status = self.style.SUCCESS("OK  ") if ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{name.ljust(width)}  {status}  {reason}")
            if not ok:
                failed.append(name)
        for alert in self._alerts():
            self.stdout.write(f"{alert.key.ljust(width)}  {self.style.WARNING('WARN')}  {alert.text}")
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}", returncode=1)
        self.stdout.write(self.style.SUCCESS("All checks passed."))

    def _alerts(self) -> list[operations.Alert]:
        try:
            return operations.alerts()
        except Exception as exc:  # noqa: BLE001 - no database: the checks above said so already
            return [operations.Alert("alerts", f"cannot read the installation's state ({type(exc).__name__})")]
