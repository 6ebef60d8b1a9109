"""Ed25519 keys: this region's private key, the public keys it trusts, signatures.

The private key lives in ``ROBO_HOME/keys/<region>.key`` (PEM, mode 0600) and
never in the database; beside it, ``<region>.item-key`` (32 random bytes, 0600,
created on first use) keys the hashes that name items in metrics files. Public keys travel as ``ed25519:<base64 of 32 bytes>``;
``robo keys trust REGION KEY`` stores one in the ``trusted_keys`` table.
Bundles and metrics files are signed over their canonical JSON manifest
(``robo.canonical.signed_bytes``). ``KeyStore`` is what services receive.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from robo.clock import utcnow
from robo.errors import ConfigurationError, ReplicationError, SignatureError
from robo.storage.database import Database
from robo.storage.models import TrustedKeyRow

PREFIX = "ed25519:"
ITEM_SECRET_BYTES = 32
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def key_file(home: Path, region: str) -> Path:
    return home / "keys" / f"{region}.key"


def item_secret_file(home: Path, region: str) -> Path:
    return home / "keys" / f"{region}.item-key"


def load_or_create_item_secret(home: Path, region: str) -> bytes:
    """This region's key for item hashes in metrics files (created once, mode 0600)."""
    path = item_secret_file(home, region)
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".item-key-", dir=path.parent)  # mode 0600
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(secrets.token_bytes(ITEM_SECRET_BYTES))
                os.link(tmp, path)  # atomic, and never replaces a key made meanwhile
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigurationError(
                f"item key {path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
            )
        secret = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot use the item key {path}: {exc.strerror or exc}") from None
    if len(secret) != ITEM_SECRET_BYTES:
        raise ConfigurationError(
            f"item key {path} is not {ITEM_SECRET_BYTES} bytes; restore it from a backup "
            "(or delete it: item hashes in later metrics files will differ from earlier ones)"
        )
    return secret


def check_region(region: str) -> str:
    """A region name robo knows (a typo would make a key that never verifies anything)."""
    from robo.regions import REGIONS

    if region in REGIONS:
        return region
    close = difflib.get_close_matches(region.lower(), list(REGIONS), n=3, cutoff=0.5)
    shown = region if _SLUG.match(region) else repr(region)[:70]
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ReplicationError(
        f"unknown region {shown}; {hint}regions are lower-case names such as "
        "'ile-de-france' or 'guyane' (robo regions: see docs/replication.md)"
    )


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode()


def fingerprint(public: str) -> str:
    return hashlib.sha256(parse_public(public).public_bytes_raw()).hexdigest()[:16]


def parse_public(text: str) -> Ed25519PublicKey:
    """Accept ``ed25519:<base64>``, bare base64 or a PEM public key."""
    value = text.strip()
    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(value.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return key
        raw = base64.b64decode(value.removeprefix(PREFIX), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        raise ReplicationError(
            "not an Ed25519 public key; paste the line printed by `robo keys generate` "
            "on the other installation (ed25519:...)"
        ) from None


@dataclass(frozen=True)
class GeneratedKey:
    region: str
    path: str
    public_key: str
    fingerprint: str


def generate(home: Path, region: str, *, force: bool = False) -> GeneratedKey:
    """Create this region's signing key (0600 PEM); refuse to overwrite one silently."""
    path = key_file(home, region)
    if path.exists() and not force:
        raise ReplicationError(
            f"{path} already exists; keep it (other regions trust its public key) or pass "
            "--force to replace it, then send the new public key to every region"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)
    public = public_text(key.public_key())
    return GeneratedKey(region, str(path), public, fingerprint(public))


def load_private(home: Path, region: str) -> Ed25519PrivateKey:
    path = key_file(home, region)
    if not path.is_file():
        raise ConfigurationError(
            f"no signing key for region '{region}' at {path}; run `robo keys generate`"
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigurationError(
            f"signing key {path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path} is not an Ed25519 private key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode()


# --- trusted keys -------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKey:
    region: str
    public_key: str
    fingerprint: str
    added_at: str


@dataclass(frozen=True)
class KeyList:
    region: str
    local_key: str | None  # this region's public key, when it has a signing key
    trusted: list[TrustedKey]


class KeyStore:
    """This region's signing key (a file under ROBO_HOME) and the keys it trusts (rows)."""

    def __init__(self, db: Database, home: Path, region: str) -> None:
        self.db = db
        self.home = home
        self.region = region

    def private(self) -> Ed25519PrivateKey:
        return load_private(self.home, self.region)

    def item_secret(self) -> bytes:
        """The key of this region's item hashes in metrics files (made on first use)."""
        return load_or_create_item_secret(self.home, self.region)

    def generate(self, *, force: bool = False) -> GeneratedKey:
        """Create this region's key and trust it here (so its own bundles verify)."""
        created = generate(self.home, self.region, force=force)
        self.trust(self.region, created.public_key, replace=True)
        return created

    def listing(self) -> KeyList:
        local = None
        if key_file(self.home, self.region).is_file():
            local = public_text(self.private().public_key())
        return KeyList(self.region, local, self.trusted())

    def trust(self, region: str, public_key: str, *, replace: bool = False) -> TrustedKey:
        check_region(region)
        text = public_text(parse_public(public_key))
        now = utcnow()
        with self.db.session() as session:
            row = session.get(TrustedKeyRow, region)
            if row is not None and row.public_key != text and not replace:
                raise ReplicationError(
                    f"region '{region}' already has a trusted key ({fingerprint(row.public_key)}); "
                    "pass --replace if that region really changed its key"
                )
            if row is None:
                row = TrustedKeyRow(region=region, public_key=text, added_at=now)
                session.add(row)
            elif row.public_key != text:
                row.public_key, row.added_at = text, now
            return TrustedKey(
                region, text, fingerprint(text), row.added_at.isoformat(timespec="seconds")
            )

    def trusted(self) -> list[TrustedKey]:
        with self.db.session() as session:
            rows = session.scalars(select(TrustedKeyRow).order_by(TrustedKeyRow.region)).all()
            return [
                TrustedKey(
                    r.region,
                    r.public_key,
                    fingerprint(r.public_key),
                    r.added_at.isoformat(timespec="seconds"),
                )
                for r in rows
            ]

    def verify(self, region: str, data: bytes, signature: str, what: str) -> None:
        """Raise SignatureError unless ``signature`` is ``region``'s trusted key over ``data``."""
        if not isinstance(region, str) or not _SLUG.match(region):
            raise SignatureError(
                f"{what} names its signer {str(region)[:70]!r}, which is not a region name; "
                "the file was altered or is not from robo"
            )
        with self.db.session() as session:
            row = session.get(TrustedKeyRow, region)
            public = row.public_key if row is not None else None
        if public is None:
            raise SignatureError(
                f"{what} is signed by region '{region}', whose key this installation does not "
                f"trust; if you expect it, get that region's public key and run "
                f"`robo keys trust {region} ed25519:...`"
            )
        try:
            parse_public(public).verify(base64.b64decode(signature, validate=True), data)
        except (InvalidSignature, ValueError, binascii.Error):
            raise SignatureError(
                f"{what}: the signature does not match region '{region}''s trusted key "
                f"({fingerprint(public)}); the file was altered or signed by another key"
            ) from None
