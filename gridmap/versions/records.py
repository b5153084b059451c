"""Keeping versions when grids are imported, and putting a scheduled version in force on its day.

The live layers are always those of the version in force today: an import dated today or earlier (and
later than the version in force) replaces them at once, together with its version row, in one
transaction. An import dated in the future, or dated before the version in force (a late record of an
older layout), is kept as a version only; a scheduled one is put in force by ``activate_due`` on its
day (the service checks at start and every ``ACTIVATION_CHECK_S``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final

from gridmap.package import Frame
from gridmap.store.base import Store
from gridmap.validation import errors, validate
from gridmap.versions import snapshot
from gridmap.versions.model import Version, in_force

log = logging.getLogger(__name__)

ACTIVATION_CHECK_S: Final = 60.0
"""How often a running service looks whether a scheduled version has come into force (at most this
late after midnight)."""
CHINA: Final = timezone(timedelta(hours=8), "CST")
PENDING_ID: Final = 1 << 62
"""The id a version about to be recorded is compared with: later than every kept one."""


def today_local() -> date:
    """The county's date (UTC+8): a version dated 1 March is in force from midnight in China."""
    return datetime.now(UTC).astimezone(CHINA).date()


def kept_versions(store: Store) -> list[Version]:
    return [Version.from_row(row) for row in store.boundary_versions()]


def record_import(store: Store, layers: Mapping[str, Frame], *, revision: str, effective_from: date,
                  label: str, actor: str, today: date) -> tuple[int, bool]:
    """Keep the import as a version; write the live layers too when it is the version in force today.
    Returns (version id, whether the live layers were replaced)."""
    row = {"effective_from": effective_from.isoformat(), "label": label, "revision": revision,
           "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "actor": actor,
           "counts": json.dumps({name: len(layers[name]) for name in snapshot.BOUNDARY_LAYERS})}
    blob = snapshot.encode(layers)
    pending = Version(PENDING_ID, effective_from, label, revision, row["created_at"], actor, {})
    if in_force([*kept_versions(store), pending], today) is pending:
        number = store.replace_layers(layers, revision=revision, version=(row, blob))
        assert number is not None
        return number, True
    return store.insert_boundary_version(row, blob), False


def layers_of_version(store: Store, version_id: int, base: Mapping[str, Frame]) -> dict[str, Frame]:
    """``base`` (the live layers) with the boundary layers of a kept version."""
    blob = store.boundary_version_blob(version_id)
    if blob is None:
        raise KeyError(version_id)
    return {**base, **snapshot.decode(blob)}


def activate_due(store: Store, today: date) -> int | None:
    """Put the version in force ``today`` into the live layers if it is not there yet; its id, or None
    when nothing changed. A version that no longer fits the live layers (a grid of a community that was
    removed since) is left out with a warning, and the live layers stay as they are."""
    from gridmap.importer import content_revision  # the importer imports this module

    due = in_force(kept_versions(store), today)
    if due is None or due.id == store.live_boundary_version():
        return None
    layers = layers_of_version(store, due.id, store.read_layers())
    problems = errors(validate(layers))
    if problems:
        log.warning("boundary version %d (from %s) does not fit the live layers (%d errors); not put in force",
                    due.id, due.effective_from, len(problems))
        return None
    store.replace_layers(layers, revision=content_revision(layers), live_version=due.id)
    log.info("boundary version %d (from %s) put in force", due.id, due.effective_from)
    return due.id
