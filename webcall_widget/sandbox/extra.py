"""The ``sandbox`` extra: the packages the sandbox needs and a site in production does not.

``pip install "django-webcall-widget[sandbox]"`` installs python-socketio (the sandbox's
Socket.IO server) and Daphne (``python -m webcall_widget.sandbox`` serves with it, and
``runserver`` serves ASGI with it). Nothing imports them until the sandbox is used.
"""

from __future__ import annotations

import importlib.util
import sys

INSTALL = 'pip install "django-webcall-widget[sandbox]"'

# The module each needs, and the distribution that provides it.
MOUNTED = {"socketio": "python-socketio"}  # the sandbox mounted on a site
STANDALONE = {**MOUNTED, "daphne": "daphne"}  # python -m webcall_widget.sandbox


class SandboxNotInstalled(ImportError):
    """The sandbox is used, but the ``sandbox`` extra is not installed."""

    def __init__(self, missing: list[str]) -> None:
        """``missing``: the distributions to install."""
        super().__init__(
            f"The VoiceHub sandbox needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL}. "
            "A site that does not use the sandbox can turn it off instead (it is on while "
            "DEBUG is): WEBCALL_WIDGET['SANDBOX']['ENABLED'] = False, with "
            "WEBCALL_WIDGET['UPSTREAM']['URL'] set to VoiceHub's URL."
        )
        self.missing = missing


def missing(needed: dict[str, str] = MOUNTED) -> list[str]:
    """The distributions of ``needed`` whose module cannot be imported."""
    return [dist for module, dist in needed.items() if not _importable(module)]


def require(needed: dict[str, str] = MOUNTED) -> None:
    """Raises:
    SandboxNotInstalled: a module of ``needed`` cannot be imported.
    """
    absent = missing(needed)
    if absent:
        raise SandboxNotInstalled(absent)


def _importable(module: str) -> bool:
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a finder refused it
        return False
