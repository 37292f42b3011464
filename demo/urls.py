from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from demo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("csp/", views.strict_csp, name="strict-csp"),
    path("plain/", views.plain_embed, name="plain-embed"),
    # for pages that name no icon (the admin's): browsers then ask for /favicon.ico
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("webcall/", include("webcall_widget.urls")),
]
