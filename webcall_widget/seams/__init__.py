"""Where the app leans on a library's private parts, one small module for each.

A private API can change in any release, so each use lives here (the upstream fast lane
in :mod:`webcall_widget.voicehub.connection`, with its verified range here), says what it
does and on which versions it was verified, and has a plain way out when it is not there.
``pyproject.toml`` bounds those libraries within the verified versions (tests/test_seams.py
checks that the two agree); :func:`unverified`
names every library installed outside them, and the test suite fails on it with that
message, so an upgrade is a deliberate act: run the tests the seam names, then widen its
range.

==========================  ===========================================================
seam                        why
==========================  ===========================================================
:mod:`.autoreloader`        ``runserver``'s autoreloader: a stop signal to its parent
                            reaches the child that serves (``RUN_MAIN``, the child found
                            through ``/proc``)
:mod:`.early_exit`          end live calls at the very start of the interpreter's shutdown,
                            while the threads the database needs still take work
                            (``threading._register_atexit``)
:mod:`.signals`             run the drain before the handler a server installed for
                            SIGTERM and SIGINT (Uvicorn's ``capture_signals``, Twisted's)
:mod:`.twisted_reactor`     under Daphne, have Twisted's reactor wait for the calls to
                            end before it drops the connections (a Daphne 4.2 bug)
:mod:`.websockets_lane`     the upstream fast lane (voicehub/connection.py) reads websockets'
                            connection state and size limits, and feeds its parser what the
                            lane leaves
==========================  ===========================================================
"""

from __future__ import annotations

from webcall_widget.seams import (
    autoreloader,
    early_exit,
    signals,
    twisted_reactor,
    websockets_lane,
)
from webcall_widget.seams.verified import Verified


def every() -> tuple[Verified, ...]:
    """Each seam's library and the versions it was verified on."""
    return (
        *autoreloader.VERIFIED,
        *early_exit.VERIFIED,
        *signals.VERIFIED,
        *twisted_reactor.VERIFIED,
        *websockets_lane.VERIFIED,
    )


def unverified() -> list[str]:
    """Every seam whose library is installed at a version it was not verified on."""
    return [problem for seam in every() if (problem := seam.problem()) is not None]
