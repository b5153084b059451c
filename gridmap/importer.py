"""Import a data package into a store: read, validate everything, then write in one transaction."""

from __future__ import annotations

import hashlib
import io
import lzma
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from gridmap.errors import ImportRejected, PackageUnreadable, PayloadTooLarge, size_text
from gridmap.package import Frame, read_package
from gridmap.problems import Problem
from gridmap.schema import LAYERS
from gridmap.settings import Settings
from gridmap.store.base import Store
from gridmap.validation import errors, validate

RATIO_FLOOR = 1 << 20
"""Zip entries unpacking to less than this are not judged by their compression ratio: a small table of
repeated values compresses 100 times and harms no one; a bomb has to be large to hurt."""
COPY_CHUNK = 1 << 20
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


@dataclass
class ImportReport:
    revision: str
    counts: dict[str, int]
    warnings: list[Problem] = field(default_factory=list)
    unchanged: bool = False

    def to_dict(self) -> dict:
        return {
            "revision": self.revision,
            "counts": self.counts,
            "unchanged": self.unchanged,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def check_package(path: Path | str, *, source_crs: str | None = None) -> tuple[dict[str, Frame], list[Problem]]:
    package = read_package(path, source_crs=source_crs)
    return package.layers, package.problems + validate(package.layers)


def import_package(store: Store, path: Path | str, *, source_crs: str | None = None) -> ImportReport:
    """Raises ImportRejected (with every problem) before writing anything if any error is found."""
    layers, problems = check_package(path, source_crs=source_crs)
    found = errors(problems)
    if found:
        raise ImportRejected(
            f"数据包有 {len(found)} 个错误，未导入任何数据",
            details=[p.to_dict() for p in problems],
        )
    revision = content_revision(layers)
    warnings = [p for p in problems if p.severity == "warning"]
    counts = {name: len(frame) for name, frame in layers.items()}
    if store.revision() == revision:
        return ImportReport(revision, counts, warnings, unchanged=True)
    store.replace_layers(layers, revision=revision)
    return ImportReport(revision, counts, warnings)


def content_revision(layers: dict[str, Frame]) -> str:
    """A hash of the package content: importing the same package twice is recognised as such."""
    digest = hashlib.sha256()
    for name, layer in LAYERS.items():
        frame = layers.get(name)
        if frame is None:
            continue
        digest.update(name.encode())
        for f in layer.fields:
            digest.update("\x1f".join(map(str, frame[f.name].tolist())).encode())
        if layer.spatial:
            for blob in shapely.to_wkb(np.asarray(frame.geometry.values), byte_order=1, flavor="iso"):
                digest.update(blob or b"\x00")
    return digest.hexdigest()[:16]


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


def import_upload(store: Store, data: bytes, *, source_crs: str | None = None,
                  limits: UploadLimits | None = None) -> ImportReport:
    """Import a package sent as bytes: a GeoPackage file, or a zip of a package folder.

    Whatever happens, the temporary folder it was unpacked into is removed before this returns.
    """
    limits = limits or UploadLimits()
    if limits.tmp_dir is not None:
        limits.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridmap-upload-", dir=limits.tmp_dir) as tmp:
        root = Path(tmp)
        if data.startswith(b"SQLite format 3\x00"):
            target = root / "upload.gpkg"
            target.write_bytes(data)
        elif data.startswith(b"PK\x03\x04"):
            target = _unzip(data, root / "package", limits)
        else:
            raise PackageUnreadable("上传内容既不是 GeoPackage 文件，也不是 zip 压缩的数据包目录")
        return import_package(store, target, source_crs=source_crs)


def _unzip(data: bytes, folder: Path, limits: UploadLimits) -> Path:
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
