"""The websockets versions the upstream fast lane was verified on.

The lane (:mod:`webcall_widget.voicehub.connection`) subclasses websockets' asyncio client
connection: it takes the bytes in ``data_received`` before websockets' parser, reads
``protocol.state`` to know whether the connection is still open, and
``protocol.max_message_size`` / ``max_fragment_size`` to refuse what websockets would.
None of those is public; websockets' 14.0 rewrite of its asyncio implementation is where
they appeared in this form. Measured side by side, the lane takes the relay from 66-70 %
to 57-65 % of a core at 50 calls, so it stays, behind this range.
"""

from __future__ import annotations

from webcall_widget.seams.verified import Verified

VERIFIED = (
    Verified(
        "websockets",
        (16, 0),
        (18, 0),
        "webcall_widget/voicehub/connection.py",
        "tests/voicehub/test_connection.py",
    ),
)
