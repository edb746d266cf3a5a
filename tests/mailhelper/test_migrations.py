"""Migrations apply forward on a database that holds rows in every table of the schema before round two.

Round two moved models between apps with SeparateDatabaseAndState: Job from mailhelper to core, the
legacy models from mailhelper to legacy, the analysis models from mail to analysis. Their tables stay;
what must follow them is their content types (so admin permissions and log entries still point at
them) and their encrypted values, which stay bound to the label they were sealed under
(EncryptedModel.sealed_label), or they no longer open.

The test rolls the test database back to the last migrations of commit 53e851c (the main branch before
round two), fills every table of our apps through the historical models of that state (they seal with
the old labels, as the old code did), migrates forward to the leaves and reads everything back through
the current models. It leaves the database at the leaves for the tests that follow.
"""

from __future__ import annotations

import json

import pytest
from django.apps import apps as current_apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.fields import EncryptedBinaryField, EncryptedTextField
from accounts.models import User
from tests.plugins.accounts import create_test_user

OUR_APPS = ("core", "accounts", "mail", "tags", "analysis", "rules", "legacy", "mailhelper")

#: The leaves of our apps at 53e851c; the apps born in round two are unmigrated there. Third-party
#: apps stay where they are (round two changed none of them).
BEFORE_ROUND_TWO = [
    ("accounts", "0001_initial"),
    ("mail", "0008_topic_vectors"),
    ("tags", "0001_initial"),
    ("rules", "0001_initial"),
    ("mailhelper", "0002_legacy_import"),
    ("core", None),
    ("analysis", None),
    ("legacy", None),
]

#: The models round two moved, by their table: (label before, label now).
MOVED = {
    "mailhelper_job": ("mailhelper.job", "core.job"),
    "mailhelper_legacyuserkey": ("mailhelper.legacyuserkey", "legacy.legacyuserkey"),
    "mailhelper_legacyimportmap": ("mailhelper.legacyimportmap", "legacy.legacyimportmap"),
    "mailhelper_legacyrecord": ("mailhelper.legacyrecord", "legacy.legacyrecord"),
    "mailhelper_legacysealedvalue": ("mailhelper.legacysealedvalue", "legacy.legacysealedvalue"),
    "mail_messageanalysis": ("mail.messageanalysis", "analysis.messageanalysis"),
    "mail_learnedclassifier": ("mail.learnedclassifier", "analysis.learnedclassifier"),
    "mail_providersettings": ("mail.providersettings", "analysis.providersettings"),
    "mail_trustedsender": ("mail.trustedsender", "analysis.trustedsender"),
    "mail_topicmodel": ("mail.topicmodel", "analysis.topicmodel"),
    "mail_messagevector": ("mail.messagevector", "analysis.messagevector"),
}


def _our_tables() -> list[str]:
    return sorted(
        name for name in connection.introspection.table_names() if name.split("_", 1)[0] in OUR_APPS and "_" in name
    )


def _row_counts(tables: list[str]) -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # names from introspection, not from input
            counts[table] = cursor.fetchone()[0]
    return counts


def _content_type_ids(labels) -> dict[str, int | None]:
    """Content type id per model label ("app.model"), None where there is none."""
    found = {f"{ct.app_label}.{ct.model}": ct.pk for ct in ContentType.objects.all()}
    return {label: found.get(label) for label in labels}


class _OldRows:
    """Creates rows through the historical models of one migration state.

    Every encrypted field gets a value of its own, recorded by (table, pk, field), so the test can read
    each one back through the current models. Foreign keys are given as ids: historical models only
    accept instances of their own state's classes.
    """

    def __init__(self, apps) -> None:
        self.apps = apps
        self.sealed: dict[tuple[str, object], dict[str, object]] = {}

    def create(self, label: str, **fields):
        model = self.apps.get_model(label)
        values = {}
        for field in model._meta.concrete_fields:
            text = f"{model._meta.label_lower}.{field.name} sealed by the old layout: Grüße"
            if isinstance(field, EncryptedTextField):
                values[field.name] = text
            elif isinstance(field, EncryptedBinaryField):
                values[field.name] = text.encode() + b"\x00\xff"
        row = model.objects.create(**fields, **values)
        if values:
            self.sealed[(model._meta.db_table, row.pk)] = values
        return row


def _fill_every_table(apps, user: User) -> tuple[_OldRows, object]:
    """One row (at least) in each table of our apps, written as the code before round two would."""
    rows = _OldRows(apps)
    owner = {"owner_id": user.pk}
    interval, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
    # Beat rows as mail/migrations/0003 and the old mail/schedules.py wrote them.
    stragglers, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.get_or_create(
        name="mail: analyse stragglers", defaults={"task": "mail.analyse_stragglers", "interval": stragglers}
    )
    beat = PeriodicTask.objects.create(name="mail sync (migration test)", task="mail.sync_account", interval=interval)

    account = rows.create(
        "mail.MailAccount",
        **owner,
        name="Work",
        email_address="migrator@example.test",
        imap_host="127.0.0.1",
        imap_username="migrator",
        smtp_host="127.0.0.1",
        smtp_username="migrator",
        periodic_task_id=beat.pk,
    )
    beat.kwargs = json.dumps({"account_id": str(account.pk)})
    beat.save(update_fields=["kwargs"])
    folder = rows.create("mail.Folder", account_id=account.pk, name="INBOX", uidvalidity=1)
    message = rows.create(
        "mail.Message",
        **owner,
        account_id=account.pk,
        folder_id=folder.pk,
        uidvalidity=1,
        uid=1,
        sort_date=timezone.now(),
        message_id="<migration@example.test>",
        from_address="boss@example.test",
    )
    rows.create("mail.Attachment", **owner, message_id=message.pk, content_type="text/plain")
    rows.create("mail.SyncRun", account_id=account.pk)
    draft = rows.create("mail.Draft", **owner, account_id=account.pk, original_id=message.pk)
    rows.create(
        "mail.PendingAction",
        **owner,
        account_id=account.pk,
        message_id=message.pk,
        kind="mark_read",
        source_folder="INBOX",
    )
    rows.create(
        "mail.PendingAction",
        **owner,
        account_id=account.pk,
        message_id=message.pk,
        draft_id=draft.pk,
        kind="append_sent",
        source_folder="Sent",
    )
    rows.create("mail.ReplySettings", **owner)
    rows.create("mail.AccountSignature", **owner, account_id=account.pk)
    analysis = rows.create("mail.MessageAnalysis", **owner, message_id=message.pk, state="done", urgency=3)
    rows.create("mail.LearnedClassifier", **owner)
    rows.create("mail.ProviderSettings", **owner)
    rows.create("mail.TrustedSender", **owner, account_id=account.pk, pattern="boss@example.test")
    rows.create("mail.TopicModel", **owner, version=1, dims=2)
    rows.create("mail.MessageVector", **owner, message_id=message.pk, version=1)

    tag = rows.create("tags.Tag", **owner, name="Invoices")
    rows.create("tags.TagAssignment", **owner, tag_id=tag.pk, message_id=message.pk)
    rows.create("tags.TagSuggestion", **owner, tag_id=tag.pk, message_id=message.pk, score=0.8)
    rows.create("tags.TagModelState", **owner, tag_id=tag.pk)
    rows.create("tags.TagSettings", **owner)
    rule = rows.create("rules.Rule", **owner, name="Boss", definition={"conditions": [], "actions": []})
    rows.create("rules.RuleLog", **owner, rule_id=rule.pk, message_id=message.pk)

    rows.create("mailhelper.Job", **owner, kind="reanalyse")
    rows.create("mailhelper.LegacyUserKey", user_id=user.pk, legacy_id=7)
    rows.create("mailhelper.LegacyImportMap", **owner, table="users", legacy_id=7, target_pk=str(user.pk))
    rows.create("mailhelper.LegacyRecord", **owner, table="contacts", legacy_id=1)
    rows.create(
        "mailhelper.LegacySealedValue",
        **owner,
        target="mail.message",
        target_pk=str(message.pk),
        field="subject",
        fingerprint="ab" * 32,
    )

    # Permissions and admin log entries point at content types of moved models.
    user.user_permissions.add(Permission.objects.get(content_type__app_label="mailhelper", codename="view_job"))
    group = Group.objects.create(name="analysts")
    group.permissions.add(Permission.objects.get(content_type__app_label="mail", codename="change_messageanalysis"))
    user.groups.add(group)
    LogEntry.objects.create(
        user_id=user.pk,
        content_type_id=ContentType.objects.get(app_label="mail", model="messageanalysis").pk,
        object_id=str(analysis.pk),
        object_repr="analysis",
        action_flag=CHANGE,
    )
    return rows, analysis


@pytest.mark.slow
def test_migrations_apply_forward_on_a_database_with_rows_in_every_table(transactional_db):
    ContentType.objects.clear_cache()
    executor = MigrationExecutor(connection)
    # Made with today's model before the rollback: that drops the user's later columns, not the row.
    user = create_test_user("migrator").user
    try:
        executor.migrate(BEFORE_ROUND_TWO)
        # The state migrate() returns after a backward plan across apps is not that of the applied
        # migrations; the loader's state of exactly those is.
        executor.loader.build_graph()
        old_apps = executor.loader.project_state(list(executor.loader.applied_migrations)).apps

        # Rolling back renamed the content types to the apps the models were in.
        moved_types = _content_type_ids([label for pair in MOVED.values() for label in pair])
        for old, new in MOVED.values():
            assert moved_types[old] is not None and moved_types[new] is None, (old, new)

        rows, analysis = _fill_every_table(old_apps, user)

        tables = _our_tables()
        before = _row_counts(tables)
        empty = [table for table, count in before.items() if not count]
        assert not empty, f"tables without a row: fill them in _fill_every_table: {empty}"
        assert set(MOVED) <= set(tables)
        types_before = _content_type_ids(
            m._meta.label_lower for m in old_apps.get_models() if m._meta.app_label in OUR_APPS
        )
        permissions_before = {
            label: Permission.objects.filter(content_type_id=pk).count() for label, pk in types_before.items()
        }

        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert _row_counts(tables) == before

    # Every content type kept its id (what permissions and log entries point at) under the model's new app.
    ContentType.objects.clear_cache()
    current = {m._meta.db_table: m for m in current_apps.get_models() if m._meta.app_label in OUR_APPS}
    for old_label, pk in types_before.items():
        table = old_apps.get_model(old_label)._meta.db_table
        now = ContentType.objects.get_for_model(current[table])
        assert (now.pk, f"{now.app_label}.{now.model}") == (pk, MOVED.get(table, (old_label, old_label))[1])
        assert Permission.objects.filter(content_type_id=pk).count() == permissions_before[old_label]
    old_labels = [old for old, _ in MOVED.values()]
    assert _content_type_ids(old_labels) == dict.fromkeys(old_labels)
    user = User.objects.get(pk=user.pk)
    assert user.has_perm("core.view_job") and user.has_perm("analysis.change_messageanalysis")
    entry = LogEntry.objects.get(object_id=str(analysis.pk))
    assert entry.get_edited_object().summary == rows.sealed[("mail_messageanalysis", analysis.pk)]["summary"]

    # Every encrypted value opens through the current models (moved ones by their sealed_label).
    for (table, pk), values in rows.sealed.items():
        stored = current[table].objects.get(pk=pk)
        for name, value in values.items():
            assert getattr(stored, name) == value, f"{current[table]._meta.label}.{name}"
    moved_encrypted = {table for table, _ in rows.sealed} & set(MOVED)
    assert moved_encrypted >= {"mail_messageanalysis", "mailhelper_legacyrecord", "mail_messagevector"}

    # Beat rows name tasks that still exist (moved tasks kept their names).
    from mailhelper.celery import app

    app.loader.import_default_modules()
    assert set(PeriodicTask.objects.values_list("task", flat=True)) - set(app.tasks) == set()


def test_a_fresh_database_is_migrated_to_the_leaves(db):
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
