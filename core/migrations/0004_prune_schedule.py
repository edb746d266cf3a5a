"""The daily periodic task that deletes history past its age (core/retention.py prune).

It takes over from Celery's own `celery.backend_cleanup` (settings.py sets CELERY_RESULT_EXPIRES to
None, so beat no longer installs it): that row, if beat created one, is removed.
"""

from django.db import migrations

TASK_NAME = "core: prune old rows"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    daily, _ = IntervalSchedule.objects.get_or_create(every=1, period="days")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "core.prune",
            "interval": daily,
            "description": (
                "Deletes old sync runs, done outbox rows, finished jobs and task results in batches "
                "(MAILHELPER_RETENTION_*_DAYS; Mailhelper)."
            ),
        },
    )
    PeriodicTask.objects.filter(name="celery.backend_cleanup", task="celery.backend_cleanup").delete()


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_fail_stale_jobs_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
