import django.utils.timezone
from django.db import migrations, models
from django.db.models import F


def queued_when_requested(apps, schema_editor):
    """Analyses stored before the field: their only fetch was asked for on arrival."""
    CallAnalysis = apps.get_model("webcall_widget", "CallAnalysis")
    CallAnalysis.objects.update(queued_at=F("requested_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("webcall_widget", "0007_audio_dropped"),
    ]

    operations = [
        migrations.AddField(
            model_name="callanalysis",
            name="queued_at",
            field=models.DateTimeField(
                db_index=True,
                default=django.utils.timezone.now,
                help_text="When its latest fetch was asked for: on arrival, or to fetch it again.",
                verbose_name="queued",
            ),
        ),
        migrations.RunPython(queued_when_requested, migrations.RunPython.noop),
    ]
