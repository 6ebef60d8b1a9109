"""Secrets: encrypted at rest with a key kept outside the database.

Lookup order for a bot's ``ctx.secret(NAME)``: ``ROBO_SECRET_<NAME>`` in the
environment given at the edge, then the encrypted store.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from robo.clock import utcnow
from robo.errors import ConfigurationError, SecretError
from robo.redaction import Redactor
from robo.storage.database import Database
from robo.storage.models import SecretRow

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_PREFIX = "ROBO_SECRET_"


def load_or_create_key(key_file: Path, key_from_env: str = "") -> bytes:
    """The Fernet key: from the environment, else a 0600 file created on first use."""
    if key_from_env:
        key = key_from_env.encode()
    else:
        if not key_file.exists():
            _create_key_file(key_file)
        mode = key_file.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigurationError(
                f"secret key file {key_file} is readable by others (mode {mode:o}); "
                f"run: chmod 600 {key_file}"
            )
        key = key_file.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise ConfigurationError(
            "the secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)"
        ) from None
    return key


def _create_key_file(key_file: Path) -> None:
    """Write a new key whole, then link it in: of processes racing on a fresh home,
    one key wins and every process reads that one, never a half-written file."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    draft = key_file.with_name(f".{key_file.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process linked its key first
            os.link(draft, key_file)
    finally:
        draft.unlink(missing_ok=True)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise SecretError(
            f"'{name}' is not a valid secret name: use letters, digits and '_', "
            "starting with a letter (e.g. portal_password)"
        )
    return name


class SecretStore:
    def __init__(
        self,
        db: Database,
        key: bytes,
        env: Mapping[str, str] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.db = db
        self._fernet = Fernet(key)
        self._env = dict(env or {})
        self.redactor = redactor or Redactor()

    def set(self, name: str, value: str) -> None:
        check_name(name)
        if not value:
            raise SecretError(f"secret '{name}' cannot be empty")
        token = self._fernet.encrypt(value.encode())
        with self.db.session() as session:
            row = session.get(SecretRow, name)
            if row is None:
                session.add(SecretRow(name=name, ciphertext=token, updated_at=utcnow()))
            else:
                row.ciphertext, row.updated_at = token, utcnow()

    def delete(self, name: str) -> bool:
        with self.db.session() as session:
            row = session.get(SecretRow, name)
            if row is not None:
                session.delete(row)
            return row is not None

    def names(self) -> list[dict[str, str]]:
        """Names and where each value comes from (the environment wins); never values."""
        with self.db.session() as session:
            stored = {
                r.name: r.updated_at.isoformat(timespec="seconds")
                for r in session.scalars(select(SecretRow))
            }
        from_env = {
            k.removeprefix(ENV_PREFIX).lower() for k in self._env if k.startswith(ENV_PREFIX)
        }
        return [
            {
                "name": name,
                "source": "environment" if name in from_env else "store",
                "updated_at": stored.get(name, ""),
            }
            for name in sorted(set(stored) | from_env)
        ]

    def get(self, name: str) -> str:
        """The value of ``name``; registered with the redactor before it is returned."""
        check_name(name)
        value = self._env.get(ENV_PREFIX + name.upper()) or self._env.get(ENV_PREFIX + name)
        if value is None:
            with self.db.session() as session:
                row = session.get(SecretRow, name)
                if row is None:
                    raise SecretError(
                        f"secret '{name}' is not set; run `robo secret set {name}` "
                        f"or export {ENV_PREFIX}{name.upper()}"
                    )
                try:
                    value = self._fernet.decrypt(row.ciphertext).decode()
                except InvalidToken:
                    raise SecretError(
                        f"secret '{name}' cannot be decrypted with this key; was the key file "
                        "replaced? Set the secret again with `robo secret set`"
                    ) from None
        self.redactor.add(value)
        return value
