"""Generated bundles: damaged zips, rewritten manifests (re-signed, as an attacker holding
the trusted key would), hostile entry names and definitions; imported and listed.

`robo import` refuses what it cannot trust with one line and stores nothing; a bad
bundle in a shared catalogue is skipped with its reason by `robo replicas`, which
still lists the rest and exits 0.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from robo.canonical import signed_bytes
from robo.replication import signing
from tests.hostile.strategies import EDGE_TEXT, values
from tests.hostile.support import (
    HOSTILE,
    World,
    assert_clean,
    copy_home,
    dump,
    run_cli,
    scratch,
)
from tests.hostile.test_hostile_definitions import mutate, node_paths

Entries = list[tuple[str, bytes, int]]  # name, data, unix mode


def entries_of(blob: bytes) -> Entries:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return [(i.filename, archive.read(i), i.external_attr >> 16) for i in archive.infolist()]


def zip_bytes(entries: Entries) -> bytes:
    buffer = io.BytesIO()
    with (
        warnings.catch_warnings(),  # "Duplicate name": exactly what we mean to write
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        warnings.simplefilter("ignore")
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def signed(world: World, entries: Entries, manifest: bytes | None = None) -> Entries:
    """Hashes recomputed and the manifest signed again with the trusted key."""
    files = {n.removeprefix("files/"): d for n, d, _ in entries if n.startswith("files/")}
    if manifest is None:
        current = json.loads(dict((n, d) for n, d, _ in entries)["manifest.json"])
        current["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
        manifest = signed_bytes(current)
    signature = signing.sign(world.guyane_key, manifest).encode()
    rest = [(n, d, m) for n, d, m in entries if n not in ("manifest.json", "signature")]
    return [("manifest.json", manifest, 0o100644), ("signature", signature, 0o100644), *rest]


@st.composite
def damaged(draw: st.DrawFn, world: World) -> bytes:
    """The valid bundle with bytes flipped, cut or added: never re-signed."""
    data = bytearray(world.bundle)
    op = draw(st.sampled_from(["flip", "flip", "cut", "append", "zero"]))
    at = draw(st.integers(0, len(data) - 1))
    if op == "flip":
        for offset in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=4)):
            data[offset] ^= draw(st.integers(1, 255))
    elif op == "cut":
        del data[at:]
    elif op == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    else:
        data[at : at + 16] = bytes(16)
    return bytes(data)


@st.composite
def rewritten(draw: st.DrawFn, world: World) -> bytes:
    """A bundle rebuilt and re-signed: manifest values, entries or the definition changed."""
    entries = entries_of(world.bundle)
    op = draw(st.sampled_from(["manifest", "manifest", "raw-manifest", "entry", "definition"]))
    if op == "manifest":
        manifest: Any = json.loads(dict((n, d) for n, d, _ in entries)["manifest.json"])
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(node_paths(manifest)))
            mutate(
                manifest, path, draw(st.sampled_from(["replace", "delete", "add"])), draw(values)
            )
        try:
            raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        except (ValueError, TypeError):
            raw = repr(manifest).encode("utf-8", "surrogatepass")
        return zip_bytes(signed(world, entries, raw))
    if op == "raw-manifest":
        depth = draw(st.integers(1, 3000))
        raw = draw(
            st.sampled_from(
                [
                    b'{"format": "robo-bundle", "x": ' + b"[" * depth + b"]" * depth + b"}",
                    b"[" * depth,
                    b'{"format": "robo-bundle", "format_version": 1e999}',
                    b'{"format": "robo-bundle", "format_version": NaN}',
                    b"\xff\xfe",
                    b"",
                    b"null",
                ]
            )
        )
        return zip_bytes(signed(world, entries, raw))
    if op == "entry":
        name = draw(
            st.sampled_from(
                [
                    "files/../evil.py", "/abs.py", "files/a\\b.py", "files/" + "a" * 300,
                    "files/" + "/".join(["d"] * 20) + "/x", "files/./x", "manifest.json",
                    "files/bot.py", "files/\udcff.py", "files/nul\0.py", "extra.txt", "files/",
                ]
            )
        )  # fmt: skip
        mode = draw(st.sampled_from([0o100644, 0o120777, 0o020644, 0o010644, 0o040755, 0]))
        data = draw(st.binary(max_size=64))
        try:
            return zip_bytes(signed(world, [*entries, (name, data, mode)]))
        except (ValueError, UnicodeEncodeError):
            return zip_bytes(signed(world, [*entries, ("files/odd", data, mode)]))
    text = dict((n, d) for n, d, _ in entries)["files/process.yaml"].decode()
    lines = text.splitlines()
    at = draw(st.integers(0, len(lines) - 1))
    key = lines[at].split(":", 1)[0]
    lines[at] = f"{key}: {json.dumps(draw(st.sampled_from(EDGE_TEXT)))}"
    replaced = [(n, "\n".join(lines).encode("utf-8", "surrogatepass") if n == "files/process.yaml" else d, m) for n, d, m in entries]  # fmt: skip
    return zip_bytes(signed(world, replaced))


def bundles(world: World) -> st.SearchStrategy[bytes]:
    return st.one_of(damaged(world), rewritten(world))


@given(data=st.data(), target=st.sampled_from(["occitanie", "national"]))
@settings(HOSTILE, max_examples=220)
def test_a_hostile_bundle_is_imported_or_refused_and_a_refusal_stores_nothing(
    world: World, data: st.DataObject, target: str
) -> None:
    blob = data.draw(bundles(world))
    with scratch() as tmp:
        home = copy_home(getattr(world, target), tmp)
        path = tmp / "hostile.robo.zip"
        path.write_bytes(blob)
        before = dump(home)
        result = run_cli(home, ["import", str(path)])
        assert_clean(result, before, dump(home))


@given(data=st.data())
@settings(HOSTILE, max_examples=60)
def test_a_hostile_bundle_in_a_shared_catalogue_is_skipped_with_a_warning(
    world: World, data: st.DataObject
) -> None:
    blob = data.draw(bundles(world))
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        catalogue = tmp / "catalogue"
        catalogue.mkdir()
        (catalogue / "guyane-process-1.0.0.robo.zip").write_bytes(world.bundle)
        (catalogue / "hostile.robo.zip").write_bytes(blob)
        before = dump(home)
        listed = run_cli(home, ["replicas", "--catalogue", str(catalogue), "--json"])
        assert_clean(listed, before, dump(home))
        assert listed.exit_code == 0, listed.output  # one bad file never stops the listing
        report = json.loads(listed.stdout)
        assert [r["process_id"] for r in report["replicas"]] == ["guyane-process"]
        upgraded = run_cli(home, ["upgrade", "guyane-process", "--catalogue", str(catalogue)])
        assert_clean(upgraded, before, dump(home))


def test_every_single_flipped_byte_of_a_bundle_is_refused_or_changes_nothing_imported(
    world: World, tmp_path: Path
) -> None:
    """Exhaustive over one bundle's bytes (a fifth of them, evenly spread)."""
    from robo.errors import RoboError
    from robo.replication.bundles import read_bundle
    from tests.hostile.support import _installation

    robo = _installation(tmp_path / "check", "occitanie")
    robo.keys.trust("guyane", world.guyane_public)
    original = read_bundle(robo.keys, _write(tmp_path / "clean.zip", world.bundle)).files
    for offset in range(0, len(world.bundle), 5):
        data = bytearray(world.bundle)
        data[offset] ^= 0x01
        try:
            files = read_bundle(robo.keys, _write(tmp_path / "flipped.zip", bytes(data))).files
        except RoboError:
            continue
        assert files == original, f"byte {offset} changed what is imported"
    robo.close()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
