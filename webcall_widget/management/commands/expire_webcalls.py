"""``manage.py expire_webcalls``: close the records of calls that cannot still be going on.

Run it from cron (every few minutes is plenty). Limits never need it: they already ignore
such calls. It keeps the admin honest after a relay process was killed mid-call.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from webcall_widget.conf import get_settings
from webcall_widget.limits import expire_stale_calls


class Command(BaseCommand):
    help = "Mark calls whose token expired unused, or whose relay died, as over."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = expire_stale_calls(get_settings())
        self.stdout.write(
            f"{counts['never-connected']} never connected, "
            f"{counts['relay-lost']} lost with their relay."
        )
