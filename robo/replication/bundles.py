"""Bundles: one signed zip that carries a process version from one region to another.

Layout (format ``robo-bundle``, ``format_version`` 1)::

    manifest.json   {format, format_version, process_id, version, origin_region,
                     origin_version, signed_by, created_at, definition_hash,
                     files: {path: sha256}}
    signature       Ed25519 over the canonical manifest, base64
    files/...       process.yaml and the files the definition names (bot code,
                    documentation); nothing else. The items file (``items.path``:
                    often real names and dates) only with ``with_items``: without it
                    the manifest does not list it, ``definition_hash`` covers the
                    files carried, and the imported version has no default input.

Bundles are written mode 0644: they are meant for a shared catalogue.

Import checks, in this order, and stores nothing until all pass: size and entry
limits, entry names and types (archive.py), manifest, format version, signature
against the trusted key of ``signed_by``, every hash, then the definition
(safe YAML + pydantic, as ``robo validate``), its content hash, lineage,
downgrade, and the region's stored overlay against the new version.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from robo.canonical import signed_bytes
from robo.clock import utcnow
from robo.definition import MAX_VERSION, SEMVER, SLUG
from robo.errors import (
    BundleError,
    DefinitionError,
    DowngradeRefused,
    ReplicationError,
    VersionConflict,
)
from robo.loader import DEFINITION_FILE, LoadedProcess, content_hash, load_process
from robo.overlay import check_fits, load_overlay
from robo.replication import overlays, safejson
from robo.replication.archive import Limits, read_entries, unsafe_name
from robo.replication.semver import SemVer, newest
from robo.replication.signing import sign

if TYPE_CHECKING:
    from robo.registry import Registry
    from robo.replication.signing import KeyStore
    from robo.storage.database import Database

FORMAT = "robo-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "signature"
FILES = "files/"
SUFFIX = ".robo.zip"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=512)

    format: Literal["robo-bundle"]
    format_version: Literal[1]
    process_id: str = Field(pattern=SLUG)
    version: str = Field(pattern=SEMVER, max_length=MAX_VERSION)
    origin_region: str = Field(pattern=SLUG)
    origin_version: str = Field(pattern=SEMVER, max_length=MAX_VERSION)
    signed_by: str = Field(pattern=SLUG)
    created_at: str = Field(max_length=64)
    definition_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    files: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(max_length=1_000)


@dataclass(frozen=True)
class VerifiedBundle:
    path: Path
    manifest: Manifest
    files: dict[str, bytes]  # by path under files/, process.yaml included


@dataclass(frozen=True)
class ExportResult:
    path: str
    process_id: str
    version: str
    origin_region: str
    origin_version: str
    files: int
    sha256: str


@dataclass(frozen=True)
class ImportResult:
    process_id: str
    version: str
    origin_region: str
    origin_version: str
    outcome: str  # created, new-version, reactivated, unchanged
    previous_version: str | None
    overlay_kept: bool
    diff: str


# --- export --------------------------------------------------------------------------------


def export_bundle(
    registry: Registry,
    keys: KeyStore,
    process_id: str,
    version: str | None,
    output: Path,
    *,
    with_items: bool = False,
) -> ExportResult:
    """Write one signed bundle of a deployed version (default: the active one).

    The items file (``items.path``) is left out unless ``with_items``: it often holds
    personal data (names, birth dates) that a shared catalogue must not carry.
    """
    region = keys.region
    key = keys.private()
    if version is None:
        version = registry.active(process_id, with_overlay=False).definition.version
    pv = registry.get(process_id, version)  # as deployed: never the region's overlay
    files = dict(pv.files)
    digest = pv.content_hash
    items_path = pv.definition.items.path
    if items_path and items_path in files and not with_items:
        del files[items_path]
        digest = content_hash(pv.definition, files)  # what the importer will compute
    contents = {DEFINITION_FILE: pv.definition_text.encode(), **files}
    manifest = Manifest(
        format="robo-bundle",
        format_version=1,
        process_id=process_id,
        version=version,
        origin_region=pv.origin_region or region,
        origin_version=pv.origin_version or version,
        signed_by=region,
        created_at=utcnow().isoformat(timespec="seconds"),
        definition_hash=digest,
        files={name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())},
    )
    body = signed_bytes(manifest.model_dump(mode="json"))
    write_zip(
        output,
        {
            MANIFEST: body,
            SIGNATURE: sign(key, body).encode(),
            **{FILES + name: data for name, data in sorted(contents.items())},
        },
    )
    return ExportResult(
        str(output), process_id, version, manifest.origin_region, manifest.origin_version,
        len(contents), hashlib.sha256(output.read_bytes()).hexdigest(),
    )  # fmt: skip


def write_zip(output: Path, entries: dict[str, bytes]) -> None:
    """Reproducible zip (fixed timestamps, sorted order), written atomically, mode 0644."""
    tmp = ""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=output.parent)
        os.close(fd)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        os.chmod(tmp, 0o644)  # a bundle is shared; mkstemp made it 0600
        os.replace(tmp, output)
    except OSError as exc:
        raise ReplicationError(
            f"cannot write {output}: {exc.strerror or exc}; choose a file you may write"
        ) from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


# --- verification --------------------------------------------------------------------------


def read_manifest(entries: dict[str, bytes], path: Path) -> tuple[Manifest, bytes]:
    raw = entries.get(MANIFEST)
    if raw is None or SIGNATURE not in entries:
        raise BundleError(f"{path} has no {MANIFEST} or no {SIGNATURE}: not a robo bundle")
    try:  # depth bounded before parsing: a nested manifest is refused, no key needed
        data = safejson.loads(raw, max_depth=4)
    except ValueError as exc:
        raise BundleError(f"{path}: {MANIFEST} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{path}: {MANIFEST} does not describe a robo bundle")
    found = data.get("format_version")
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise BundleError(
            f"{path} is bundle format {found!r}; this robo reads format {FORMAT_VERSION} "
            "only: upgrade robo to import it"
        )
    try:
        return Manifest.model_validate(data), raw
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"{path}: {MANIFEST}: {where}: {first['msg']}") from None


def verify_signature(
    keys: KeyStore, manifest: Manifest, raw: bytes, signature: bytes, path: Path
) -> None:
    try:
        text = signature.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    keys.verify(manifest.signed_by, raw, text, f"bundle {path.name}")


def read_signed_manifest(keys: KeyStore, path: Path, limits: Limits | None = None) -> Manifest:
    """The manifest of a bundle whose signature verifies (for catalogues: files unread)."""
    entries = read_entries(path, limits or Limits(), only={MANIFEST, SIGNATURE})
    manifest, raw = read_manifest(entries, path)
    verify_signature(keys, manifest, raw, entries[SIGNATURE], path)
    return manifest


def read_bundle(keys: KeyStore, path: Path, limits: Limits | None = None) -> VerifiedBundle:
    """Every check short of the definition itself; nothing is written anywhere."""
    limits = limits or Limits()
    entries = read_entries(path, limits)
    manifest, raw = read_manifest(entries, path)
    verify_signature(keys, manifest, raw, entries[SIGNATURE], path)
    unexpected = sorted(set(entries) - {MANIFEST, SIGNATURE} - {FILES + n for n in manifest.files})
    missing = sorted(n for n in manifest.files if FILES + n not in entries)
    if unexpected or missing:
        raise BundleError(
            f"{path}: the archive does not match its manifest "
            f"(unlisted: {', '.join(unexpected) or 'none'}; missing: {', '.join(missing) or 'none'})"
        )
    files: dict[str, bytes] = {}
    for name, expected in manifest.files.items():
        if unsafe_name(name, limits.depth):
            raise BundleError(f"{path}: manifest names an unsafe path '{name}'; refused")
        data = entries[FILES + name]
        if hashlib.sha256(data).hexdigest() != expected:
            raise BundleError(
                f"{path}: files/{name} does not match its sha256 in the manifest; the bundle "
                "was altered after it was signed"
            )
        files[name] = data
    if DEFINITION_FILE not in files:
        raise BundleError(f"{path} holds no {DEFINITION_FILE}")
    return VerifiedBundle(path, manifest, files)


def load_definition(bundle: VerifiedBundle) -> LoadedProcess:
    """Validate the definition exactly as `robo validate` does, from a private temp copy."""
    path, manifest = bundle.path, bundle.manifest
    with tempfile.TemporaryDirectory(prefix="robo-bundle-") as tmp:
        root = Path(tmp)
        for name, data in bundle.files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            # The items file may have been left out (export without --with-items).
            loaded = load_process(root, items_optional=True)
        except DefinitionError as exc:
            text = exc.message.replace(str(root), f"{path.name}:files")
            raise BundleError(f"{path}: the definition inside is not valid: {text}") from None
    declared = {DEFINITION_FILE, *loaded.definition.files}
    extra = sorted(set(bundle.files) - declared)
    if extra:
        raise BundleError(f"{path}: files not named by the definition: {', '.join(extra)}")
    definition = loaded.definition
    if (definition.id, definition.version) != (manifest.process_id, manifest.version):
        raise BundleError(
            f"{path}: the manifest says {manifest.process_id} {manifest.version} but the "
            f"definition is {definition.id} {definition.version}"
        )
    if loaded.content_hash != manifest.definition_hash:
        raise BundleError(f"{path}: the definition's content hash does not match the manifest")
    return replace(loaded, source_dir=path)


# --- import --------------------------------------------------------------------------------


def import_bundle(
    db: Database, registry: Registry, keys: KeyStore, path: Path, overlay: Path | None = None
) -> ImportResult:
    """Verify everything, then register the version with its lineage (one transaction).

    The region's stored overlay must fit the new version; ``overlay`` gives a
    new overlay file instead, checked against the new version and stored with it.
    """
    bundle = read_bundle(keys, path)
    loaded = load_definition(bundle)
    manifest = bundle.manifest
    pid, local = manifest.process_id, keys.region
    known = {p.id for p in registry.processes()}
    previous: str | None = None
    if pid in known:
        versions = registry.versions(pid)
        origins = {v.origin_region or local for v in versions}
        if origins != {manifest.origin_region}:
            raise BundleError(
                f"{path}: '{pid}' here comes from {', '.join(sorted(origins))}, the bundle from "
                f"{manifest.origin_region}; two different processes share this id"
            )
        highest = newest([v.version for v in versions])
        if highest and SemVer(manifest.version) < SemVer(highest):
            raise DowngradeRefused(
                f"{path} holds {pid} {manifest.version}, older than {highest} already here; "
                f"downgrades are refused (to go back to a version you had: robo rollback {pid} "
                "VERSION)"
            )
        previous = next((v.version for v in versions if v.active), None)
    replacement = load_overlay(overlay) if overlay else None
    stored = replacement or overlays.stored(db, pid)
    if stored is not None:
        check_fits(stored, loaded.definition)
    try:
        result = registry.deploy(
            loaded, origin_region=manifest.origin_region, origin_version=manifest.origin_version
        )
    except VersionConflict:
        raise BundleError(
            f"{path} claims {pid} {manifest.version}, which is already here with different "
            "content; a bundle never changes a released version: refused"
        ) from None
    if replacement is not None:
        overlays.store(db, replacement)
    diff = ""
    if previous and previous != manifest.version:
        diff = registry.diff(pid, previous, manifest.version)
    return ImportResult(
        pid, manifest.version, manifest.origin_region, manifest.origin_version,
        result.outcome, previous, stored is not None, diff,
    )  # fmt: skip


def bundle_name(process_id: str, version: str) -> str:
    return f"{process_id}-{version}{SUFFIX}"
