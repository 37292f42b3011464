"""The documentation site's pages and samples match the code they describe.

The settings reference is generated from ``conf.SCHEMA`` and must be committed as
generated; every close code is on the wire-protocol page; the complete samples in
``docs/examples/`` are loaded, checked or run here (the signal recipes in
tests/test_recipes.py, the JavaScript in tests/browser/); and every Python fragment in a
page compiles, with the settings ones checked against the schema.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import Tags, run_checks
from django.test import override_settings

from docs import settings_reference
from tests import quickstart
from webcall_widget import conf, schema
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.voicehub.events import Message, Role
from webcall_widget.voicehub.profile import UpstreamProfile

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PAGES = sorted(DOCS.glob("*.md"))


def page(name: str) -> str:
    return (DOCS / name).read_text()


def test_the_settings_reference_is_the_page_the_schema_gives():
    assert settings_reference.PAGE.read_text() == settings_reference.render(), (
        "docs/settings.md differs from conf.SCHEMA: run python -m docs.settings_reference"
    )


def test_the_check_fails_when_the_page_differs(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "settings.md"
    stale.write_text(settings_reference.render().replace("`20`", "`30`", 1))
    monkeypatch.setattr(settings_reference, "PAGE", stale)
    assert settings_reference.main(["--check"]) == 1
    assert "run python -m docs.settings_reference" in capsys.readouterr().err


def test_every_setting_is_in_the_reference_with_its_default():
    rows = dict(re.findall(r"^\| `([A-Z_.]+)` \| `([^`]*)` \|", page("settings.md"), re.M))
    assert set(rows) == set(conf.DOCS)
    assert rows["AUDIO_FRAME_MS"] == "20"
    assert rows["UPSTREAM.FRAME_MS"] == "20"
    assert rows["UPSTREAM.VISITOR_ROLES"] == '["user"]'
    assert rows["SANDBOX.PATH"] == '"/voicehub-sandbox/"'


def test_a_setting_doc_is_made_safe_for_a_table():
    keys = {"X": schema.Key(None, "Bearer <TOKEN> | a & b.", lambda value: None)}
    assert "| `X` | `None` | Bearer &lt;TOKEN&gt; \\| a &amp; b. | any value |" in (
        settings_reference.render(keys)
    )


def test_every_close_code_is_on_the_wire_protocol_page():
    text = page("wire-protocol.md")
    for code in CloseCode:
        assert f"| {int(code)} | `{code.name}` |" in text, code


def python_blocks() -> list[tuple[str, str]]:
    """Every ```python fragment in the pages: (page, code)."""
    found = []
    for path in PAGES:
        for block in re.findall(r"^ *```python\n(.*?)^ *```", path.read_text(), re.M | re.S):
            found.append((path.name, textwrap.dedent(block)))
    return found


@pytest.mark.parametrize(("name", "code"), python_blocks())
def test_every_python_fragment_compiles(name, code):
    compile(code, name, "exec")


def settings_fragments() -> list[tuple[str, str]]:
    return [(name, code) for name, code in python_blocks() if "WEBCALL_WIDGET = {" in code]


def test_there_are_settings_fragments_to_check():
    assert len(settings_fragments()) >= 2


@pytest.mark.parametrize(("name", "code"), settings_fragments())
def test_every_webcall_widget_in_a_page_is_valid(name, code, monkeypatch):
    # The protocol page names its class where a site would keep it: mysite.voicehub.
    monkeypatch.setitem(sys.modules, "mysite", importlib.import_module("docs.examples"))
    monkeypatch.setitem(
        sys.modules, "mysite.voicehub", importlib.import_module("docs.examples.protocol")
    )
    namespace: dict[str, Any] = {"os": os}  # settings.py imports it
    exec(code, namespace)
    assert conf.problems(namespace["WEBCALL_WIDGET"]) == []


def test_the_protocol_example_reads_a_streamed_transcript():
    from docs.examples.protocol import MyVoiceHub

    protocol = MyVoiceHub(UpstreamProfile())
    event = {"itemId": "i-1", "speaker": "caller", "delta": "Hello"}
    assert protocol.decode("transcript.delta", event) == Message("i-1", Role.USER, "Hello", False)
    assert protocol.decode("created", {"id": "m", "role": "agent", "text": "Hi"}) == Message(
        "m", Role.AGENT, "Hi", True
    )


def test_the_look_example_sets_only_properties_the_widget_reads():
    example = (EXAMPLES / "look.css").read_text()
    stylesheets = ROOT / "webcall_widget" / "static" / "webcall_widget"
    read = {
        name
        for sheet in stylesheets.glob("*.css")
        for name in re.findall(r"var\((--webcall-[a-z-]+)", sheet.read_text())
    }
    sets = set(re.findall(r"^\s*(--webcall-[a-z-]+):", example, re.M))
    assert sets and sets <= read, sets - read


PRODUCTION_ENV = {
    "DATABASE_PASSWORD": "secret",
    "WEBCALL_METRICS_TOKEN": "t" * 32,
}


def production_settings() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    code = (EXAMPLES / "settings_production.py").read_text()
    saved = {key: os.environ.get(key) for key in PRODUCTION_ENV}
    os.environ.update(PRODUCTION_ENV)
    try:
        exec(compile(code, "settings_production.py", "exec"), namespace)
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value
    return {key: value for key, value in namespace.items() if key.isupper()}


def test_the_production_settings_pass_the_apps_checks():
    values = production_settings()
    assert values["WEBCALL_WIDGET"]["UPSTREAM"]["URL"].startswith("https://")
    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    ours = {k: values[k] for k in ("WEBCALL_WIDGET", "CHANNEL_LAYERS", "CACHES", "DEBUG")}
    with override_settings(**ours):
        messages = run_checks(tags=[Tags.compatibility])
    assert [m.id for m in messages if (m.id or "").startswith("webcall_widget.")] == []


def test_a_redis_layer_that_times_out_would_fail_the_checks_the_example_passes():
    """The check above can fail: the same settings with a Redis host that times out too soon."""
    values = production_settings()
    plain = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {}}}
    plain["default"]["CONFIG"] = {"hosts": ["redis://127.0.0.1:6379/0?socket_timeout=5"]}
    with override_settings(
        WEBCALL_WIDGET=values["WEBCALL_WIDGET"], CHANNEL_LAYERS=plain, CACHES=values["CACHES"]
    ):
        messages = run_checks(tags=[Tags.compatibility])
    assert "webcall_widget.E007" in [m.id for m in messages]


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make system-deps)")
def test_nginx_accepts_the_example_site(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=www.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    # The example leaves TLS out ("as for any site"): checked with it added, as a site would.
    site = (EXAMPLES / "nginx.conf").read_text()
    assert "    listen 80;\n" in site
    tls = f"    listen 443 ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
    (tmp_path / "site.conf").write_text(site.replace("    listen 80;\n", "    listen 80;\n" + tls))
    temp = " ".join(
        f"{kind}_temp_path {tmp_path};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; {temp} scgi_temp_path {tmp_path}; include site.conf; }}\n"
    )
    result = subprocess.run(
        [str(NGINX), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_accepts_the_example_unit(tmp_path):
    uvicorn = Path(sys.executable).parent / "uvicorn"
    unit = (EXAMPLES / "webcall@.service").read_text()
    assert "--ws websockets-sansio" in unit and "--ws-per-message-deflate false" in unit
    instance = tmp_path / "webcall@8001.service"
    instance.write_text(unit.replace("/srv/yourproject/venv/bin/uvicorn", str(uvicorn)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(instance)], capture_output=True, text=True
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_readmes_short_settings_are_the_quickstarts():
    (block,) = re.findall(
        r"^ *```python\n(.*?)^ *```", (ROOT / "README.md").read_text(), re.M | re.S
    )

    def settings_after(code: str) -> dict[str, Any]:
        namespace: dict[str, Any] = {
            "INSTALLED_APPS": ["django.contrib.admin", "django.contrib.staticfiles"],
            "MIDDLEWARE": ["django.middleware.security.SecurityMiddleware"],
            "TEMPLATES": [{"DIRS": []}],
            "DATABASES": {"default": {}},
            "BASE_DIR": ROOT,
        }
        exec(textwrap.dedent(code), namespace)
        keys = ("INSTALLED_APPS", "MIDDLEWARE", "ASGI_APPLICATION", "WEBCALL_WIDGET")
        return {key: namespace[key] for key in keys}

    assert settings_after(block) == settings_after(quickstart.written("mysite/settings.py"))


def test_the_readme_stays_short_and_links_into_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def test_the_quickstart_page_shows_every_step_of_its_file():
    names = list(quickstart.steps())
    assert names == ["install", "settings", "urls", "asgi", "template", "agent", "serve"]
    shown = page("quickstart.md")
    # Each step is included from the file by the line it starts after.
    for start in (
        "# step: install",
        "cat >> mysite/settings.py",
        "cat >> mysite/urls.py",
        "cat > mysite/asgi.py",
        "cat > templates/home.html",
        "# step: agent",  # and the serve step after it
    ):
        assert f':start-after: "{start}"' in shown, start
        assert start in quickstart.STEPS.read_text(), start
