"""The periodic task that settles sync runs whose worker died (mail/sync.py settle_stale_runs)."""

from django.db import migrations

TASK_NAME = "mail: settle stale sync runs"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_5, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "mail.settle_stale_sync_runs",
            "interval": every_5,
            "description": "Marks sync runs left queued or running by a worker that died as interrupted (Mailhelper).",
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0010_sync_run_heartbeat"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
