"""Import a data package into a store: read, validate everything, then write in one transaction."""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from gridmap.errors import ImportRejected, PackageUnreadable
from gridmap.package import Frame, read_package
from gridmap.problems import Problem
from gridmap.schema import LAYERS
from gridmap.store.base import Store
from gridmap.validation import errors, validate


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


def import_upload(store: Store, data: bytes, *, source_crs: str | None = None) -> ImportReport:
    """Import a package sent as bytes: a GeoPackage file, or a zip of a package folder."""
    with tempfile.TemporaryDirectory(prefix="gridmap-upload-") as tmp:
        root = Path(tmp)
        if data.startswith(b"SQLite format 3\x00"):
            target = root / "upload.gpkg"
            target.write_bytes(data)
        elif data.startswith(b"PK\x03\x04"):
            target = _unzip(data, root / "package")
        else:
            raise PackageUnreadable("上传内容既不是 GeoPackage 文件，也不是 zip 压缩的数据包目录")
        return import_package(store, target, source_crs=source_crs)


def _unzip(data: bytes, folder: Path) -> Path:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                resolved = (folder / member).resolve()
                if not resolved.is_relative_to(folder.resolve()):
                    raise PackageUnreadable(f"zip 中的路径不安全：{member}")
            archive.extractall(folder)
    except zipfile.BadZipFile as exc:
        raise PackageUnreadable(f"zip 文件已损坏：{exc}") from exc
    entries = [p for p in folder.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder
