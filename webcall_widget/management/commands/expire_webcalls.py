"""``manage.py expire_webcalls``: close the records of calls that cannot still be going on,
and forget old conversations.

Run it from cron (every few minutes is plenty). Limits never need it: they already ignore
such calls. It keeps the admin honest after a relay process was killed mid-call, and
fetches the analyses such a process left pending.

With ``--delete-older-than DAYS`` (or the ``RETENTION_DAYS`` setting) it also deletes the
transcripts, analyses, recording lists and webhook events of calls older than that and
anonymises the calls (:mod:`webcall_widget.retention`).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webcall_widget.conf import get_settings
from webcall_widget.limits import expire_stale_calls
from webcall_widget.retention import forget_older_than
from webcall_widget.webhooks.worker import fetch_abandoned


class Command(BaseCommand):
    help = (
        "Mark calls whose token expired unused, or whose relay died, as over; with "
        "--delete-older-than (or RETENTION_DAYS), forget old conversations."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--delete-older-than",
            type=int,
            metavar="DAYS",
            help=(
                "Delete the transcripts, analyses, recording lists and webhook events of "
                "calls older than DAYS days, and anonymise the calls. Default: the "
                "RETENTION_DAYS setting (None: keep everything)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings = get_settings()
        days = options.get("delete_older_than")
        if days is not None and days < 1:
            raise CommandError("--delete-older-than needs a number of days of 1 or more.")
        counts = expire_stale_calls(settings)
        self.stdout.write(
            f"{counts['never-connected']} never connected, "
            f"{counts['relay-lost']} lost with their relay."
        )
        abandoned = fetch_abandoned()
        if abandoned:
            self.stdout.write(f"{abandoned} analyses left pending by a stopped process fetched.")
        days = days if days is not None else settings.retention_days
        if days is None:
            return
        forgotten = forget_older_than(days)
        self.stdout.write(
            f"Older than {days} days: deleted {forgotten.transcript_messages} transcript "
            f"messages, {forgotten.analyses} analyses and {forgotten.webhook_events} webhook "
            f"events; anonymised {forgotten.calls_anonymised} calls."
        )
