from __future__ import annotations

from django.urls import path

from webcall_widget import assets, views
from webcall_widget.health import views as health
from webcall_widget.webhooks.views import receive_webhook

app_name = "webcall_widget"

urlpatterns = [
    path("agents/<slug:slug>/config", views.widget_config, name="widget-config"),
    path("agents/<slug:slug>/calls", views.create_call, name="create-call"),
    path("agents/<slug:slug>/audio-worklet.js", assets.audio_worklet, name="audio-worklet"),
    path(
        "agents/<slug:slug>/widget/<str:version>/<str:name>.js",
        assets.widget_module,
        name="widget-module",
    ),
    path("agents/<slug:slug>/webhook", receive_webhook, name="webhook"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", health.scrape, name="metrics"),
]
