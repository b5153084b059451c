"""Unpacking zips sent by strangers: a package folder, a zipped Shapefile inside a folder, a KMZ.

Every zip is judged from its central directory before a byte is unpacked (entries, declared total, paths,
encryption, compression method, ratio), then every byte written is counted, since declared sizes can lie.
One module so that a zip nested in a package is held to the same limits as the package itself.
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gridmap.errors import PackageUnreadable, PayloadTooLarge, size_text
from gridmap.settings import Settings

RATIO_FLOOR = 1 << 20
"""Zip entries unpacking to less than this are not judged by their compression ratio: a small table of
repeated values compresses 100 times and harms no one; a bomb has to be large to hurt."""
COPY_CHUNK = 1 << 20
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
ZIP_MAGIC = b"PK\x03\x04"


def _setting(name: str):
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class UploadLimits:
    """What an uploaded zip may unpack to (``import_*`` in gridmap/settings.py, where the defaults live)."""

    max_bytes: int = _setting("import_max_unpacked_bytes")
    max_files: int = _setting("import_max_files")
    max_ratio: float = _setting("import_max_ratio")
    tmp_dir: Path | None = None
    """Where uploads are unpacked (a temporary folder ``gridmap-upload-*`` in it, removed afterwards)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        return cls(max_bytes=settings.import_max_unpacked_bytes, max_files=settings.import_max_files,
                   max_ratio=settings.import_max_ratio, tmp_dir=settings.import_tmp_dir)


def unzip(data: bytes, folder: Path, limits: UploadLimits) -> Path:
    """Unpack after checking the central directory, then count every byte written (declared sizes can lie)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            _check_directory(members, folder, len(data), limits)
            folder.mkdir()
            written = 0
            for info in members:
                written = _extract(archive, info, folder, written, limits)
    except zipfile.BadZipFile as exc:
        raise PackageUnreadable(f"zip 文件已损坏：{exc}") from exc
    entries = [p for p in folder.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def _check_directory(members: list[zipfile.ZipInfo], folder: Path, size: int, limits: UploadLimits) -> None:
    """Refuse from the central directory alone, before a byte is unpacked."""
    if len(members) > limits.max_files:
        raise PayloadTooLarge(f"zip 中有 {len(members)} 个条目，最多 {limits.max_files} 个")
    declared = sum(info.file_size for info in members)
    if declared > limits.max_bytes:
        raise PayloadTooLarge(f"zip 解压后共 {size_text(declared)}，超过上限 {size_text(limits.max_bytes)}")
    if sum(info.compress_size for info in members) > size:
        raise PackageUnreadable("zip 文件结构异常：条目的数据相互重叠")
    for info in members:
        if not (folder / info.filename).resolve().is_relative_to(folder.resolve()):
            raise PackageUnreadable(f"zip 中的路径不安全：{info.filename}")
        if info.flag_bits & 0x1:
            raise PackageUnreadable(f"zip 中的 {info.filename} 已加密，无法读取")
        if info.compress_type not in ZIP_METHODS:
            raise PackageUnreadable(f"zip 中的 {info.filename} 使用了不支持的压缩方式")
        _check_ratio(info, info.file_size, limits)


def _check_ratio(info: zipfile.ZipInfo, unpacked: int, limits: UploadLimits) -> None:
    if unpacked > RATIO_FLOOR and unpacked > limits.max_ratio * max(info.compress_size, 1):
        raise PayloadTooLarge(f"zip 中的 {info.filename} 压缩比异常（超过 {limits.max_ratio:g} 倍），疑似压缩炸弹")


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path, written: int,
             limits: UploadLimits) -> int:
    """Stream one entry to disk, counting; returns the bytes written so far for the whole zip."""
    target = folder / info.filename
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return written
    target.parent.mkdir(parents=True, exist_ok=True)
    unpacked = 0
    with _unpacking(info):
        source = archive.open(info)
    with source, target.open("wb") as out:
        while True:
            with _unpacking(info):
                chunk = source.read(COPY_CHUNK)
            if not chunk:
                return written
            unpacked += len(chunk)
            written += len(chunk)
            if written > limits.max_bytes:
                raise PayloadTooLarge(f"zip 解压后超过上限 {size_text(limits.max_bytes)}")
            _check_ratio(info, unpacked, limits)
            out.write(chunk)


@contextmanager
def _unpacking(info: zipfile.ZipInfo) -> Iterator[None]:
    """A corrupt entry (bad CRC, truncated or invalid compressed data) is the package's fault: 422."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError) as exc:  # bz2 raises OSError
        raise PackageUnreadable(f"zip 中的 {info.filename} 无法解压：{exc}") from exc
