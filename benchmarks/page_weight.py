"""What the widget costs a page: the bytes a page view downloads, and a first open.

A page view loads the embed script (``widget.js``) and the launcher's stylesheet; the first
sign of intent (the pointer over the launcher, focus, a click, a call to resume) loads the
app's ES modules (``widget-app.js`` and what it imports) and the panel's stylesheet; a voice
call adds the audio worklet.
Sizes are gzip level 6 (what nginx, Whitenoise and CDNs serve by default) of the files as
shipped. The agent's configuration (JSON, a few KB, per page view) is not counted: it is
data. tests/browser/test_lazy_load.py checks in Chromium that a page view requests exactly
these files, and tests/test_widget_assets.py that every file shipped is counted here.

Run with ``make bench-weight``.
"""

from __future__ import annotations

import gzip

from webcall_widget.assets import MODULES, STATIC

PAGE_VIEW = ("widget.js", "launcher.css")
FIRST_OPEN = (*(f"{name}.js" for name in MODULES), "widget.css", "audio-worklet.js")
PAGE_VIEW_BUDGET = 4000
TOTAL_BUDGET = 20000


def gzipped(name: str) -> int:
    return len(gzip.compress((STATIC / name).read_bytes(), compresslevel=6, mtime=0))


def main() -> None:
    rows = [
        (name, (STATIC / name).stat().st_size, gzipped(name)) for name in PAGE_VIEW + FIRST_OPEN
    ]
    print(f"{'file':<20} {'bytes':>8} {'gzipped':>8}")
    for name, size, packed in rows:
        print(f"{name:<20} {size:>8} {packed:>8}")
    page_view = sum(packed for name, _, packed in rows if name in PAGE_VIEW)
    total = sum(packed for _, _, packed in rows)
    print(f"\npage view   {page_view:>6} bytes gzipped (budget {PAGE_VIEW_BUDGET})")
    print(f"first open  {total:>6} bytes gzipped in all (budget {TOTAL_BUDGET})")


if __name__ == "__main__":
    main()
