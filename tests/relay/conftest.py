from __future__ import annotations

import pytest

from webcall_widget.relay import lifecycle


@pytest.fixture
async def resumable(sandbox, settings):
    """Calls wait ``seconds`` for their visitor after the socket drops; those still waiting
    at the end of the test end as a server stop would end them."""

    def apply(seconds: int = 20) -> None:
        settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "RESUME_SECONDS": seconds}

    apply()
    yield apply
    await lifecycle.registry.stop_all()
