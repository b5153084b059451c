"""Import a data package into a store: read, validate everything, then write in one transaction.

``dry_run`` (``gridmap import PATH --check``, ``POST /v1/admin/import?dry_run=true``) goes through the same
reading and validation and reports the same way, but never writes: so what a check says is what an import does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from gridmap.archives import ZIP_MAGIC, UploadLimits, unzip
from gridmap.columns import Mapping
from gridmap.errors import ImportRejected, PackageUnreadable
from gridmap.package import SQLITE_MAGIC, Frame, Package, read_package
from gridmap.problems import Problem
from gridmap.schema import LAYERS
from gridmap.store.base import Store
from gridmap.validation import AREA_TOLERANCE_M2, errors, validate
from gridmap.versions import records

__all__ = ["ImportReport", "UploadLimits", "check_package", "content_revision", "import_package", "import_upload",
           "read_checked"]


@dataclass
class ImportReport:
    revision: str
    counts: dict[str, int]
    warnings: list[Problem] = field(default_factory=list)
    unchanged: bool = False
    dry_run: bool = False
    """Checked only: nothing was written (``unchanged`` then says whether the store already holds it)."""
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per layer, the source columns read under another name (网格编码 → code)."""
    files: dict[str, str] = field(default_factory=dict)
    version: dict[str, Any] | None = None
    """The boundary version kept (id, effective_from, label, live); None when nothing was written."""

    def to_dict(self) -> dict:
        return {
            "revision": self.revision,
            "version": self.version,
            "counts": self.counts,
            "unchanged": self.unchanged,
            "dry_run": self.dry_run,
            "files": self.files,
            "columns": self.columns,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def read_checked(path: Path | str, *, source_crs: str | None = None, encoding: str | None = None,
                 mapping: Mapping | Path | str | None = None,
                 limits: UploadLimits | None = None,
                 max_overlap_m2: float = AREA_TOLERANCE_M2) -> tuple[Package, list[Problem]]:
    """The package read and every problem found (reading's and validation's)."""
    package = read_package(path, source_crs=source_crs, encoding=encoding, mapping=mapping, limits=limits)
    return package, package.problems + validate(package.layers, max_overlap_m2=max_overlap_m2)


def check_package(path: Path | str, *, source_crs: str | None = None, encoding: str | None = None,
                  mapping: Mapping | Path | str | None = None) -> tuple[dict[str, Frame], list[Problem]]:
    package, problems = read_checked(path, source_crs=source_crs, encoding=encoding, mapping=mapping)
    return package.layers, problems


def import_package(store: Store | None, path: Path | str, *, source_crs: str | None = None,
                   encoding: str | None = None, mapping: Mapping | Path | str | None = None,
                   dry_run: bool = False, limits: UploadLimits | None = None,
                   max_overlap_m2: float = AREA_TOLERANCE_M2, effective_from: date | None = None,
                   label: str = "", actor: str = "cli", today: date | None = None) -> ImportReport:
    """Raises ImportRejected (with every problem) before writing anything if any error is found.

    With ``dry_run`` nothing is written; ``store`` may then be None (a check without a store).
    ``max_overlap_m2``: grids overlapping by more are refused (``Settings.import_max_overlap_m2``).
    The grids are kept as a boundary version from ``effective_from`` (default: ``today``, the county's
    date); a version not in force today leaves the live layers alone (``gridmap.versions.records``).
    """
    package, problems = read_checked(path, source_crs=source_crs, encoding=encoding, mapping=mapping,
                                     limits=limits, max_overlap_m2=max_overlap_m2)
    layers = package.layers
    found = errors(problems)
    if found:
        raise ImportRejected(
            f"数据包有 {len(found)} 个错误，未导入任何数据",
            details=[p.to_dict() for p in problems],
        )
    revision = content_revision(layers)
    warnings = [p for p in problems if p.severity == "warning"]
    counts = {name: len(frame) for name, frame in layers.items()}
    report = ImportReport(revision, counts, warnings, dry_run=dry_run,
                          columns={k: v for k, v in package.columns.items() if v}, files=package.files)
    report.unchanged = store is not None and _already_kept(store, revision, effective_from)
    if report.unchanged or dry_run:
        return report
    assert store is not None
    today = today or records.today_local()
    day = effective_from or today
    number, live = records.record_import(store, layers, revision=revision, effective_from=day, label=label,
                                         actor=actor, today=today)
    report.version = {"id": number, "effective_from": day.isoformat(), "label": label, "live": live,
                      "scheduled": day > today}
    return report


def _already_kept(store: Store, revision: str, effective_from: date | None) -> bool:
    """An undated import of what the live layers hold, or a dated one of a version kept with that date."""
    if effective_from is None:
        return store.revision() == revision
    return any(v.revision == revision and v.effective_from == effective_from for v in records.kept_versions(store))


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


def import_upload(store: Store, data: bytes, *, source_crs: str | None = None, encoding: str | None = None,
                  dry_run: bool = False, limits: UploadLimits | None = None,
                  max_overlap_m2: float = AREA_TOLERANCE_M2, effective_from: date | None = None,
                  label: str = "", actor: str = "api") -> ImportReport:
    """Import a package sent as bytes: a GeoPackage file, or a zip of a package folder (which may carry its
    own ``mapping.toml``).

    Whatever happens, the temporary folder it was unpacked into is removed before this returns.
    """
    limits = limits or UploadLimits()
    if limits.tmp_dir is not None:
        limits.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridmap-upload-", dir=limits.tmp_dir) as tmp:
        root = Path(tmp)
        if data.startswith(SQLITE_MAGIC):
            target = root / "upload.gpkg"
            target.write_bytes(data)
        elif data.startswith(ZIP_MAGIC):
            target = unzip(data, root / "package", limits)
        else:
            raise PackageUnreadable("上传内容既不是 GeoPackage 文件，也不是 zip 压缩的数据包目录")
        return import_package(store, target, source_crs=source_crs, encoding=encoding, dry_run=dry_run,
                              limits=dataclasses.replace(limits, tmp_dir=root), max_overlap_m2=max_overlap_m2,
                              effective_from=effective_from, label=label, actor=actor)
