"""The catalogue: a folder of bundles, and the upgrades it offers to replicated processes.

A catalogue is any folder (a shared drive, a git repo, a download area) holding
bundle files. Only manifests are read to list what it offers, and only bundles
whose signature verifies count; a newer version is found by semantic version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from robo.errors import ReplicationError, RoboError
from robo.replication.bundles import Manifest, import_bundle, read_signed_manifest
from robo.replication.overlays import list_overlays
from robo.replication.semver import SemVer

if TYPE_CHECKING:
    from robo.registry import Registry
    from robo.replication.signing import KeyStore
    from robo.storage.database import Database


@dataclass(frozen=True)
class CatalogueEntry:
    path: Path
    manifest: Manifest


@dataclass(frozen=True)
class Catalogue:
    folder: str
    entries: list[CatalogueEntry]
    rejected: list[str]  # "file: why", for bundles skipped (unreadable, unsafe, untrusted)

    def newest(self, process_id: str) -> CatalogueEntry | None:
        mine = [e for e in self.entries if e.manifest.process_id == process_id]
        return max(mine, key=lambda e: SemVer(e.manifest.version)) if mine else None


@dataclass(frozen=True)
class Replica:
    process_id: str
    origin_region: str
    origin_version: str
    version_in_use: str
    available: str | None  # newest version in the catalogue, when newer than the one in use
    overlay: bool


@dataclass(frozen=True)
class UpgradeResult:
    process_id: str
    from_version: str
    to_version: str
    outcome: str  # upgraded, up-to-date
    overlay_kept: bool
    bundle: str
    diff: str


def catalogue_folder(chosen: Path | None) -> Path:
    """The catalogue folder asked for (--catalogue, else ROBO_CATALOGUE), checked."""
    if chosen is None:
        raise ReplicationError(
            "no catalogue: pass --catalogue DIR or set ROBO_CATALOGUE (a folder of bundles)"
        )
    if not chosen.is_dir():
        raise ReplicationError(f"catalogue {chosen} is not a folder")
    return chosen


def read_catalogue(keys: KeyStore, folder: Path) -> Catalogue:
    entries: list[CatalogueEntry] = []
    rejected: list[str] = []
    for path in sorted(folder.glob("*.zip")):
        try:
            entries.append(CatalogueEntry(path, read_signed_manifest(keys, path)))
        except RoboError as exc:
            rejected.append(f"{path.name}: {exc.message}")
        except (ValueError, RecursionError, MemoryError, OSError) as exc:
            # A shared catalogue holds what anyone put there: one bad file is skipped, with
            # the reason, and never stops the listing for everyone.
            rejected.append(f"{path.name}: unreadable ({type(exc).__name__}: {exc})"[:500])
    return Catalogue(str(folder), entries, rejected)


def replicas(
    db: Database, registry: Registry, keys: KeyStore, folder: Path | None
) -> tuple[list[Replica], Catalogue | None]:
    """Each process adopted from another region, and whether the catalogue (if any) has newer."""
    catalogue = read_catalogue(keys, catalogue_folder(folder)) if folder else None
    adapted = {o.process_id for o in list_overlays(db)}
    local = keys.region
    result = []
    for process in registry.processes():
        active = next(v for v in registry.versions(process.id) if v.active)
        if active.origin_region in (None, local):
            continue
        newest = catalogue.newest(process.id) if catalogue else None
        available = None
        if newest and SemVer(newest.manifest.version) > SemVer(active.version):
            available = newest.manifest.version
        result.append(
            Replica(
                process.id,
                active.origin_region,
                active.origin_version or active.version,
                active.version,
                available,
                process.id in adapted,
            )
        )
    return result, catalogue


def upgrade(
    db: Database,
    registry: Registry,
    keys: KeyStore,
    process_id: str,
    folder: Path | None,
    overlay: Path | None = None,
) -> UpgradeResult:
    """Import the newest catalogue version, keeping the region's overlay (or ``overlay``)."""
    catalogue = read_catalogue(keys, catalogue_folder(folder))
    current = registry.active(process_id, with_overlay=False).definition.version
    newest = catalogue.newest(process_id)
    if newest is None:
        why = f" ({'; '.join(catalogue.rejected)})" if catalogue.rejected else ""
        raise ReplicationError(
            f"no bundle of {process_id} in the catalogue {catalogue.folder}{why}"
        )
    if SemVer(newest.manifest.version) <= SemVer(current):
        return UpgradeResult(
            process_id, current, current, "up-to-date", False, str(newest.path), ""
        )
    imported = import_bundle(db, registry, keys, newest.path, overlay)
    return UpgradeResult(
        process_id, current, imported.version, "upgraded", imported.overlay_kept,
        str(newest.path), imported.diff,
    )  # fmt: skip
