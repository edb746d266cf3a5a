"""SyncRun.heartbeat_at (a run's last sign of life) and the status "interrupted" (its worker died)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0009_analysis_models_moved"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="heartbeat_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        # Existing rows: their last known sign of life, not the moment of the migration.
        migrations.RunSQL(
            "UPDATE mail_syncrun SET heartbeat_at = COALESCE(finished_at, started_at, queued_at)",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="syncrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "queued"),
                    ("running", "running"),
                    ("success", "finished"),
                    ("failed", "failed"),
                    ("skipped", "skipped"),
                    ("interrupted", "interrupted (the worker stopped)"),
                ],
                default="queued",
                max_length=20,
            ),
        ),
    ]
