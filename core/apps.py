from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor: imports no other app of the project (tests/test_architecture.py holds it to that)."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers system checks)
            retention,
        )

        retention.register_core_policies()  # finished jobs, task results; the apps add theirs
