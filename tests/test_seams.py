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


def declared_ranges() -> dict[str, list[object]]:
    """Every requirement in pyproject.toml (dependencies and extras), by library."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    lines = list(project["project"]["dependencies"])
    for extra in project["project"]["optional-dependencies"].values():
        lines += extra
    found: dict[str, list[object]] = {}
    for line in lines:
        requirement = Requirement(line)
        found.setdefault(requirement.name.lower(), []).append(requirement.specifier)
    return found


def test_pyproject_allows_no_version_outside_a_seams_verified_range():
    """Every range pyproject.toml gives a seam's library starts at or above the seam's low
    version and stops at its high one, so that pip never installs an unverified version."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    ranges = declared_ranges()
    checked = []
    for seam in seams.every():
        if seam.library == "python":
            continue
        for specifier in ranges.get(seam.library, []):
            assert isinstance(specifier, SpecifierSet)
            low = ".".join(map(str, seam.low))
            high = ".".join(map(str, seam.high))
            lows = [Version(s.version) for s in specifier if s.operator == ">="]
            assert lows and min(lows) >= Version(low), (seam.library, str(specifier), low)
            highs = [Version(s.version) for s in specifier if s.operator == "<"]
            assert highs == [Version(high)], (seam.library, str(specifier), high)
            checked.append(seam.library)
    assert {"django", "websockets", "daphne", "uvicorn"} <= set(checked)
