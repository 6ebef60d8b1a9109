"""Semantic version ordering (semver.org §11): 1.10.0 > 1.9.0 > 1.9.0-rc.2 > 1.9.0-rc.1."""

from __future__ import annotations

import re
from functools import total_ordering

from robo.definition import SEMVER

_PATTERN = re.compile(SEMVER)


@total_ordering
class SemVer:
    def __init__(self, text: str) -> None:
        if not _PATTERN.match(text):
            raise ValueError(f"'{text}' is not a semantic version such as 1.2.0")
        core, _, pre = text.partition("-")
        major, minor, patch = (int(part) for part in core.split("."))
        self.text = text
        self.core = (major, minor, patch)
        self.pre = tuple(pre.split(".")) if pre else ()

    def _pre_key(self) -> tuple[tuple[int, int, str], ...]:
        # Numeric identifiers sort before alphanumeric ones, numerically among themselves.
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and (self.core, self.pre) == (other.core, other.pre)

    def __hash__(self) -> int:
        return hash((self.core, self.pre))

    def __lt__(self, other: SemVer) -> bool:
        if self.core != other.core:
            return self.core < other.core
        if not self.pre or not other.pre:
            return bool(self.pre) and not other.pre  # a pre-release precedes its release
        return self._pre_key() < other._pre_key()

    def __repr__(self) -> str:
        return f"SemVer({self.text!r})"


def newest(versions: list[str]) -> str | None:
    return max(versions, key=SemVer) if versions else None
