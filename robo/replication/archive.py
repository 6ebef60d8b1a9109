"""Reading an untrusted zip safely: limits, entry names and types checked before any read.

Nothing here writes to disk. Every entry's name is checked (no absolute path,
no ``..``, no backslash or drive, no symlink, no duplicate), sizes are capped
both as declared and as actually decompressed, and a corrupt archive becomes
a ``BundleError``.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from robo.errors import BundleError

MAX_ARCHIVE_BYTES = 100_000_000
MAX_ENTRY_BYTES = 20_000_000
MAX_TOTAL_BYTES = 200_000_000
MAX_ENTRIES = 1_000
MAX_DEPTH = 12


@dataclass(frozen=True)
class Limits:
    archive_bytes: int = MAX_ARCHIVE_BYTES
    entry_bytes: int = MAX_ENTRY_BYTES
    total_bytes: int = MAX_TOTAL_BYTES
    entries: int = MAX_ENTRIES
    depth: int = MAX_DEPTH


def unsafe_name(name: str, depth: int) -> str | None:
    """Why ``name`` may not be extracted, or None when it is a plain relative path."""
    if not name or "\\" in name or "\0" in name:
        return "contains a backslash or NUL, or is empty"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".") for part in name.split("/")):
        return "contains '..' or '.'"
    if len(parts) > depth:
        return f"is nested deeper than {depth} folders"
    return None


def read_entries(path: Path, limits: Limits, only: set[str] | None = None) -> dict[str, bytes]:
    """File entries of the zip at ``path`` (all, or those named ``only``), after every check."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}") from None
    if size > limits.archive_bytes:
        raise BundleError(f"{path} is {size} bytes; bundles are limited to {limits.archive_bytes}")
    try:
        blob = path.read_bytes()
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            infos = archive.infolist()
            _check_infos(path, infos, limits)
            return {
                info.filename: _read(archive, info, limits, blob)
                for info in infos
                if not info.is_dir() and (only is None or info.filename in only)
            }
    except (
        zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
        ValueError, KeyError, struct.error, UnicodeDecodeError,
    ) as exc:  # fmt: skip
        raise BundleError(f"{path} is not a readable bundle (corrupt zip: {exc})") from None


def _check_infos(path: Path, infos: list[zipfile.ZipInfo], limits: Limits) -> None:
    if len(infos) > limits.entries:
        raise BundleError(f"{path} holds {len(infos)} entries; the limit is {limits.entries}")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        reason = unsafe_name(name.rstrip("/") if info.is_dir() else name, limits.depth)
        if reason:
            raise BundleError(f"{path}: entry '{name}' {reason}; refused")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BundleError(f"{path}: entry '{name}' is a symbolic link; refused")
        # No file type at all (zipfile.writestr, many tools) is read as a plain file.
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise BundleError(f"{path}: entry '{name}' is not a regular file; refused")
        if info.flag_bits & 0x1:
            raise BundleError(f"{path}: entry '{name}' is encrypted; refused")
        if name in seen:
            raise BundleError(f"{path}: entry '{name}' appears twice; refused")
        seen.add(name)
        if info.file_size > limits.entry_bytes:
            raise BundleError(
                f"{path}: entry '{name}' is {info.file_size} bytes; the limit is "
                f"{limits.entry_bytes}"
            )
        total += info.file_size
        if total > limits.total_bytes:
            raise BundleError(f"{path} unpacks to more than {limits.total_bytes} bytes; refused")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, blob: bytes) -> bytes:
    # The declared size may lie (zip bomb): read at most one byte past the limit.
    with archive.open(info) as handle:
        data = handle.read(min(info.file_size, limits.entry_bytes) + 1)
    if len(data) > info.file_size or len(data) > limits.entry_bytes:
        raise BundleError(f"entry '{info.filename}' is larger than it declares; refused")
    _check_local_header(info, blob)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        _check_stream_end(info, blob)
    return data


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def _check_local_header(info: zipfile.ZipInfo, blob: bytes) -> None:
    """An entry's local header says what the central directory says about it.

    zipfile reads sizes, CRC and dates from the central directory and mostly skips the
    local copy; a bundle whose two copies disagree was altered, and is refused.
    """
    start = info.header_offset
    fields = _LOCAL_HEADER.unpack(blob[start : start + _LOCAL_HEADER.size])
    magic, version, flags, method, time, date, crc, compressed, size, name_length, _ = fields
    year, month, day, hour, minute, second = info.date_time
    expected: tuple[object, ...] = (
        b"PK\x03\x04", info.extract_version, info.flag_bits, info.compress_type,
        hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day,
    )  # fmt: skip
    found: tuple[object, ...] = (magic, version, flags, method, time, date)
    if not info.flag_bits & 0x08:  # no data descriptor: sizes and CRC are in the header
        expected += (info.CRC, info.compress_size, info.file_size)
        found += (crc, compressed, size)
    name = blob[start + _LOCAL_HEADER.size : start + _LOCAL_HEADER.size + name_length]
    if found != expected or name != info.orig_filename.encode(
        "utf-8" if flags & 0x800 else "cp437"
    ):
        raise BundleError(
            f"entry '{info.filename}': its local header disagrees with the archive's "
            "directory; the bundle was altered: refused"
        )


def _check_stream_end(info: zipfile.ZipInfo, blob: bytes) -> None:
    """The compressed stream must end exactly where the entry does.

    zipfile stops once it has the declared size and the CRC matches, so a
    flipped bit in a deflate block header (e.g. "last block") can leave the
    content intact; a bundle altered in any way is still refused.
    """
    start = info.header_offset
    name_length, extra_length = struct.unpack("<HH", blob[start + 26 : start + 30])
    data_start = start + 30 + name_length + extra_length
    raw = blob[data_start : data_start + info.compress_size]
    stream = zlib.decompressobj(-zlib.MAX_WBITS)
    stream.decompress(raw, info.file_size + 1)
    if not stream.eof or stream.unused_data or stream.unconsumed_tail:
        raise BundleError(f"entry '{info.filename}' has a damaged compressed stream; refused")
