"""The one periodic task that wakes snoozed messages and fires follow-ups (mail/snooze.py wake_due)."""

from django.db import migrations

TASK_NAME = "mail: wake snoozed mail and follow-ups"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "mail.wake_due",
            "interval": every_minute,
            "description": "Brings back snoozed messages and flags sent mail nobody answered in time (Mailhelper).",
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0019_snooze_follow_up"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
