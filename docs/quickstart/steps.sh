#!/bin/sh
# The quickstart (docs/quickstart.md) as one script, run from the directory that holds
# manage.py of a project named mysite (django-admin startproject mysite .). The page shows
# each step from here, and tests/browser/test_newcomer.py runs them on a brand-new project
# with the package's wheel, so what the page says is what works.
set -eu

# step: install
python -m pip install "django-webcall-widget[sandbox]"

# step: settings
cat >> mysite/settings.py <<'EOF'

# django-webcall-widget
INSTALLED_APPS = [
    "daphne",  # first: runserver then serves ASGI (the [sandbox] extra installs Daphne)
    *INSTALLED_APPS,
    "corsheaders",
    "channels",
    "webcall_widget",
]
MIDDLEWARE = ["corsheaders.middleware.CorsMiddleware", *MIDDLEWARE]
ASGI_APPLICATION = "mysite.asgi.application"
TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]
# SQLite has no row locks: this makes the per-agent call caps exact on it too.
DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE"}
# No UPSTREAM URL: calls go to the VoiceHub sandbox, served by this site while DEBUG is on.
WEBCALL_WIDGET = {}
EOF

# step: urls
cat >> mysite/urls.py <<'EOF'

from django.urls import include
from django.views.generic import TemplateView

urlpatterns += [
    path("webcall/", include("webcall_widget.urls")),
    path("", TemplateView.as_view(template_name="home.html")),
]
EOF

# step: asgi
cat > mysite/asgi.py <<'EOF'
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from webcall_widget.routing import websocket_urlpatterns
from webcall_widget.sandbox import mount_sandbox

application = mount_sandbox(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )
)
EOF

# step: template
mkdir -p templates
cat > templates/home.html <<'EOF'
{% load webcall_widget %}<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>mysite</title></head>
<body>
  <h1>mysite</h1>
  {% webcall_widget "help" %}
</body>
</html>
EOF

# step: agent
python manage.py migrate
python manage.py shell -c "
from webcall_widget.models import Agent
Agent.objects.get_or_create(
    slug='help',
    defaults={'name': 'Help', 'voicehub_agent_id': 'echo-agent', 'api_key': 'sandbox-key'},
)"

# step: serve
python manage.py runserver
