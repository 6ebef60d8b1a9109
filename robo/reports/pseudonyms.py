"""Pseudonymised drill-downs (``robo report --pseudonymise``): a file a manager can send
outside the administration.

An item's reference often is a case number or a person's file number, and an
error text may quote what the robot read on screen. Pseudonymising replaces each
reference with ``item-`` and the first 10 hex digits of HMAC-SHA256(secret,
reference), and drops the error texts. The secret is 32 random bytes kept in
``<ROBO_HOME>/pseudonyms.key`` (created on first use, readable by its owner only):

- the same reference gives the same pseudonym in every file this installation
  writes, so two reports can still be compared item by item;
- without the secret, a pseudonym cannot be turned back into its reference, not
  even by hashing guessed case numbers (a plain hash could be);
- another installation has another secret, so its pseudonyms do not match.

Deleting the key file starts new pseudonyms. 10 hex digits (40 bits) keep a
collision unlikely below a million distinct references.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from robo.errors import RoboError
from robo.reports.drilldown import DrillDown, ItemLine

KEY_FILE = "pseudonyms.key"
PREFIX = "item-"
DIGITS = 10


@dataclass(frozen=True)
class Pseudonyms:
    """Stable pseudonyms for item references, keyed with the installation's secret."""

    secret: bytes

    @classmethod
    def for_home(cls, home: Path) -> Pseudonyms:
        """The installation's pseudonyms: its key file under ``home``, made on first use."""
        return cls(load_or_create_key(home / KEY_FILE))

    def reference(self, reference: str) -> str:
        digest = hmac.new(self.secret, reference.encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:DIGITS]

    def item(self, line: ItemLine) -> ItemLine:
        """The item row with its reference pseudonymised and no error text."""
        detail = dataclasses.replace(
            line.item, reference=self.reference(line.item.reference), error=None, output={}
        )
        return dataclasses.replace(line, item=detail)

    def drill(self, drill: DrillDown) -> DrillDown:
        return dataclasses.replace(drill, items=[self.item(line) for line in drill.items])


def load_or_create_key(path: Path) -> bytes:
    """The secret in ``path`` (hex), written atomically with mode 0600 if it is missing."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another command made it meanwhile: use theirs
        return _read(path)
    except OSError as exc:
        raise RoboError(
            f"cannot create the pseudonym key {path}: {exc.strerror or exc}; "
            "check that ROBO_HOME is writable"
        ) from None
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(key + "\n")
    return bytes.fromhex(key)


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise RoboError(
            f"the pseudonym key {path} is damaged (expected hex digits); delete it to start "
            "new pseudonyms (earlier files will then not match new ones)"
        )
    return key
