from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebcallWidgetConfig(AppConfig):
    name = "webcall_widget"
    verbose_name = _("Web call widget")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled
        from django.core import checks
        from django.db.models.signals import post_delete, post_save

        from webcall_widget import checks as webcall_checks
        from webcall_widget import cors
        from webcall_widget.models import Agent, Call
        from webcall_widget.signals import call_created
        from webcall_widget.webhooks import processing

        for check in webcall_checks.ALL:
            checks.register(check, checks.Tags.compatibility)
        check_request_enabled.connect(cors.allow_agent_origin, dispatch_uid="webcall_widget.cors")
        post_save.connect(cors.remember_agent, sender=Agent, dispatch_uid="webcall_widget.cors")
        post_delete.connect(cors.forget_agent, sender=Agent, dispatch_uid="webcall_widget.cors")
        call_created.connect(
            processing.call_created, sender=Call, dispatch_uid="webcall_widget.webhooks"
        )
        _stop_gracefully_under_runserver()


def _stop_gracefully_under_runserver() -> None:
    """Under ``runserver``'s autoreloader the server runs in a thread of a child process:
    the child's main thread gets the stop signals (and drains the relay, see
    :mod:`webcall_widget.relay.stopping`), and the parent passes them on to it. Other
    servers are set up when their first socket arrives, in their own main thread."""
    from webcall_widget.relay import process, stopping
    from webcall_widget.seams import autoreloader

    if autoreloader.is_reloader_parent():
        autoreloader.forward_stops()
    elif autoreloader.is_reloader_child():
        autoreloader.when_watching(lambda: stopping.install(process.current))
