"""Sphinx configuration of the documentation site (``make docs``).

Why Sphinx with MyST and furo: the pages stay Markdown, so they read the same on a code host
and in the built site, and the maintainers' notes that were already Markdown slot in as they
are; Sphinx (as channels, django-htmx and django-debug-toolbar use) fails the build on a
broken internal link or anchor when run with ``-W -n``, and ``literalinclude`` lets a page
show a file the tests import or run, so no sample can rot unseen. furo is a clean theme with
search, dark mode and a narrow-screen layout, and needs no JavaScript build.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webcall_widget import __version__  # noqa: E402

project = "django-webcall-widget"
author = "django-webcall-widget developers"
copyright = "django-webcall-widget developers"
version = release = __version__

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "quickstart", "probe-limits.md"]

# Every internal reference must resolve; -W turns each miss into a failure.
nitpicky = True
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
suppress_warnings: list[str] = []

html_theme = "furo"
html_title = f"django-webcall-widget {release}"
html_static_path: list[str] = []
html_show_sourcelink = False


class _OptionalPages(logging.Filter):
    """The index lists the ``deployment-*`` pages by a glob, so that a deployment page added
    beside deployment.md is in the site at once; that glob may match none. (Sphinx logs an
    empty glob without a type, so ``suppress_warnings`` cannot name it.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        return "deployment-*" not in record.getMessage()


def setup(app: object) -> None:
    logging.getLogger("sphinx.sphinx.directives.other").addFilter(_OptionalPages())
