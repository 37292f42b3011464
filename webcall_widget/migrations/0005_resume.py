import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("webcall_widget", "0004_webhooks_analyses_and_voicehub_status"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="resume_seconds",
            field=models.PositiveIntegerField(
                blank=True,
                help_text=(
                    "How long a call waits for its visitor after their connection drops (a "
                    "reload, another page, a network change); it costs credits meanwhile. 0: "
                    "calls end at once. Empty: the site's default (RESUME_SECONDS)."
                ),
                null=True,
                validators=[django.core.validators.MaxValueValidator(600)],
                verbose_name="resume within (seconds)",
            ),
        ),
        migrations.AddField(
            model_name="call",
            name="resumes",
            field=models.PositiveIntegerField(
                default=0,
                help_text=(
                    "Times a visitor took the call up again (a reload, another page or tab)."
                ),
                verbose_name="resumes",
            ),
        ),
        migrations.AddField(
            model_name="call",
            name="suspended_seconds",
            field=models.FloatField(
                default=0.0,
                help_text=(
                    "Time the call waited for its visitor to come back, all drops together."
                ),
                verbose_name="seconds without the visitor",
            ),
        ),
        migrations.AddField(
            model_name="call",
            name="suspensions",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Times the visitor's connection dropped while the call went on.",
                verbose_name="connection drops",
            ),
        ),
    ]
