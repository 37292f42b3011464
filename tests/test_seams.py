"""The private library parts the app leans on (webcall_widget/seams/) are installed at the
versions they were verified on; an upgrade past them fails here, saying what to run."""

from __future__ import annotations

from webcall_widget import seams
from webcall_widget.seams.verified import Verified


def test_every_seam_runs_on_a_version_it_was_verified_on():
    assert seams.unverified() == []


def test_a_version_past_the_verified_range_is_named_with_what_to_do():
    seam = Verified("python", (3, 0), (3, 1), "webcall_widget/seams/x.py", "tests/test_x.py")
    [problem] = [seam.problem()]
    assert problem is not None
    assert "verified on >=3.0,<3.1" in problem
    assert "Run tests/test_x.py, then widen the range in webcall_widget/seams/x.py" in problem


def test_a_library_that_is_not_installed_is_no_problem():
    seam = Verified("no-such-library", (1, 0), (2, 0), "seam.py", "tests")
    assert seam.problem() is None
