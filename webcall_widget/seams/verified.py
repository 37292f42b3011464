"""A library's versions on which a seam was verified."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


@dataclass(frozen=True, slots=True)
class Verified:
    """A library (``"python"`` for the interpreter) verified from ``low`` up to, but not
    including, ``high`` (major.minor tuples), by the tests ``tests``."""

    library: str
    low: tuple[int, ...]
    high: tuple[int, ...]
    seam: str
    tests: str

    def installed(self) -> tuple[int, ...] | None:
        if self.library == "python":
            return tuple(sys.version_info[:2])
        try:
            text = version(self.library)
        except PackageNotFoundError:
            return None
        parts = []
        for part in text.split(".")[:2]:
            digits = "".join(c for c in part if c.isdigit())
            parts.append(int(digits or 0))
        return tuple(parts)

    def problem(self) -> str | None:
        found = self.installed()
        if found is None or self.low <= found < self.high:
            return None
        shown = ".".join(map(str, found))
        return (
            f"{self.seam} uses a private part of {self.library}, verified on "
            f"{_range(self.low, self.high)}; {shown} is installed. Run {self.tests}, then "
            f"widen the range in {self.seam} (and in pyproject.toml)."
        )


def _range(low: tuple[int, ...], high: tuple[int, ...]) -> str:
    return f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
