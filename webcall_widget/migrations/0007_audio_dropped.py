from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("webcall_widget", "0006_upstream_report"),
    ]

    operations = [
        migrations.AddField(
            model_name="call",
            name="audio_bytes_dropped_in",
            field=models.PositiveBigIntegerField(
                default=0,
                help_text=(
                    "The visitor's audio not sent on, because VoiceHub read it slower than "
                    "it came."
                ),
                verbose_name="visitor audio dropped (bytes)",
            ),
        ),
        migrations.AddField(
            model_name="call",
            name="audio_bytes_dropped_out",
            field=models.PositiveBigIntegerField(
                default=0,
                help_text=(
                    "The agent's audio not sent on, because the visitor's connection read it "
                    "slower than it came."
                ),
                verbose_name="agent audio dropped (bytes)",
            ),
        ),
    ]
