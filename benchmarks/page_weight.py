"""What the widget costs a page: the bytes a page view downloads, and a first open.

A page view loads the embed script (``widget.js``) and the launcher's stylesheet; the first
sign of intent (the pointer over the launcher, focus, a click, a call to resume) loads the
app (``widget-app.js``) and the panel's stylesheet; a voice call adds the audio worklet.
Sizes are gzip level 6 (what nginx, Whitenoise and CDNs serve by default) of the files as
shipped. The agent's configuration (JSON, a few KB, per page view) is not counted: it is
data, the same before and after the split. tests/browser/test_lazy_load.py checks in
Chromium that a page view requests exactly these files.

Run with ``make bench-weight``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "webcall_widget" / "static" / "webcall_widget"
PAGE_VIEW = ("widget.js", "launcher.css")
FIRST_OPEN = ("widget-app.js", "widget.css", "audio-worklet.js")
PAGE_VIEW_BUDGET = 4096
TOTAL_BUDGET = 20480


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
