"""A migration operation that moves models' content types to the app the models moved to.

A model moved with SeparateDatabaseAndState keeps its table, but its content type still names the
old app. The content type row is what admin permissions, admin log entries and generic relations
point at, so it is renamed in place (same id): everything pointing at it follows the model.

Reversible on purpose. If rolling back left the rows under the new app, the `migrate` that rolled
back would create fresh content types (and permissions) under the old app, and migrating forward
again would then collide with the rows left behind. A rename whose target already exists is
skipped (like Django's RenameContentType): the old row is then a stale content type that
`remove_stale_contenttypes` offers to delete.

The operation is part of the history of the migrations that use it: change it only in ways that
keep what it did for them.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import router
from django.db.migrations.operations.base import Operation


class MoveContentTypes(Operation):
    """Rename the content types of `models` (lower-case model names) from `from_app` to `to_app`."""

    reduces_to_sql = False
    reversible = True

    def __init__(self, models: Sequence[str], from_app: str, to_app: str) -> None:
        self.models = list(models)
        self.from_app = from_app
        self.to_app = to_app

    def deconstruct(self):
        return (
            self.__class__.__qualname__,
            [],
            {"models": self.models, "from_app": self.from_app, "to_app": self.to_app},
        )

    def state_forwards(self, app_label, state) -> None:
        """The models' state moves in the SeparateDatabaseAndState next to this; content types are data."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._move(from_state.apps, schema_editor, self.from_app, self.to_app)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._move(from_state.apps, schema_editor, self.to_app, self.from_app)

    def _move(self, apps, schema_editor, source: str, target: str) -> None:
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        if not router.allow_migrate_model(db, ContentType):
            return
        types = ContentType.objects.using(db)
        taken = types.filter(app_label=target, model__in=self.models).values_list("model", flat=True)
        types.filter(app_label=source, model__in=self.models).exclude(model__in=list(taken)).update(app_label=target)
        # The running process's cache (the real model's manager, not this historical one) may hold
        # the rows under their old app.
        from django.contrib.contenttypes.models import ContentType as CurrentContentType

        CurrentContentType.objects.clear_cache()

    def describe(self) -> str:
        return f"Move the content types of {', '.join(self.models)} from {self.from_app} to {self.to_app}"

    @property
    def migration_name_fragment(self) -> str:
        return f"move_content_types_to_{self.to_app}"
