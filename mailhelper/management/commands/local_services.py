"""manage.py local_services ensure|stop: the PostgreSQL and Redis of `make up` (see mailhelper/local_services.py)."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailhelper.local_services import DEFAULT_PG_BIN_GLOB, Endpoint, LocalServiceError, LocalServices, endpoint


class Command(BaseCommand):
    help = "Start a project-local PostgreSQL/Redis where nothing answers on the configured loopback URLs, or stop them."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["ensure", "stop"])
        parser.add_argument(
            "--dir",
            default=os.environ.get("MAILHELPER_LOCAL_SERVICES_DIR") or str(Path(settings.BASE_DIR) / "var"),
            help="where their data lives (default: $MAILHELPER_LOCAL_SERVICES_DIR or var/ in the repository)",
        )
        parser.add_argument(
            "--pg-bin-glob",
            default=DEFAULT_PG_BIN_GLOB,
            help="colon-separated globs of directories holding initdb and pg_ctl when they are not on PATH",
        )

    def handle(self, *args, action, dir, pg_bin_glob, **options):
        services = LocalServices(Path(dir).resolve(), pg_bin_glob)
        if action == "stop":
            services.stop(say=self.stdout.write)
            return
        db = settings.DATABASES["default"]
        points = [
            Endpoint(
                "postgresql", db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432), db.get("USER") or "postgres"
            ),
            endpoint("redis", settings.REDIS_URL),
        ]
        broker = endpoint("redis", settings.CELERY_BROKER_URL)
        if (broker.host, broker.port) != (points[1].host, points[1].port):
            points.append(broker)
        try:
            services.ensure(points, say=self.stdout.write)
        except LocalServiceError as exc:
            raise CommandError(str(exc)) from None
