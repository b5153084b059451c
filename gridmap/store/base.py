"""The storage interface: every backend (GeoPackage now, PostGIS later) answers the same calls.

Layers go in and come out as (Geo)DataFrames in WGS84 with the columns of ``gridmap.schema``;
replacing layers is one transaction, so a reader sees the old package or the new one, never a mix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd

Frame = gpd.GeoDataFrame | pd.DataFrame


@dataclass(frozen=True)
class IncidentQuery:
    """Filters on stored incidents; timestamps are ISO 8601 UTC strings, as stored."""

    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    grids: tuple[str, ...] | None = None
    """Only incidents in these grids (an actor's scope); None: no limit, incidents outside grids too."""
    community: str | None = None
    grid: str | None = None
    assignee: str | None = None
    since: str | None = None
    until: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    overdue_at: str | None = None
    """Only incidents past due at this time and not yet handled."""
    supervised_at: str | None = None
    """Only incidents not yet handled that are under supervision (督办 ordered) or past due at this time."""
    near: tuple[float, float, float, float] | None = None
    """(lon, lat, dlon, dlat): a box around a point, for duplicate search."""
    updated_since: str | None = None
    """Only incidents written (reported or changed) at or after this time: for views that apply changes."""
    order: str = "newest"
    """Listing order: ``newest`` (id descending) or ``urgent`` (urgent priority first, then open before
    handled, then the earliest due; id descending among equals). Not a filter: counts ignore it."""


@dataclass(frozen=True)
class EntityQuery:
    """Filters on staff-maintained records of one kind (see ``Store.insert_entities``)."""

    kind: str
    communities: tuple[str, ...] | None = None
    """Only records of these communities (a scope); None: no limit."""
    grids: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    fields: tuple[tuple[str, Any], ...] = ()
    """(field, value): the body's field equals the value."""
    contains: tuple[tuple[str, Any], ...] = ()
    """(field, value): the body's list field holds the value."""
    updated_since: str | None = None


@dataclass(frozen=True)
class IncidentTally:
    """What the statistics are made of, counted where the incidents are stored: no incident is read
    out for it. Keys are stored values (None where the incident has none, e.g. outside every grid)."""

    total: int = 0
    by_status: dict[str | None, int] = field(default_factory=dict)
    by_category: dict[str | None, int] = field(default_factory=dict)
    by_community: dict[str | None, int] = field(default_factory=dict)
    by_grid: dict[str | None, int] = field(default_factory=dict)
    accepted: int = 0
    """Incidents with a first response (``accepted_at``)."""
    resolved: int = 0
    resolved_on_time: int = 0
    """Resolved no later than due (``resolved_at <= due_at``)."""
    rated: int = 0
    rating_sum: int = 0
    overdue_open: int = 0
    """Not handled and due before the time asked about."""
    response_middle_ms: tuple[int, ...] = ()
    """The middle one (odd count) or two (even) of the sorted milliseconds from report to first response."""
    resolution_middle_ms: tuple[int, ...] = ()
    """The same from report to resolution."""


class Store(ABC):
    @abstractmethod
    def read_layer(self, name: str) -> Frame:
        """The layer as stored; an empty frame with the schema's columns when it was never imported."""

    def read_layers(self) -> dict[str, Frame]:
        from gridmap.schema import LAYERS

        return {name: self.read_layer(name) for name in LAYERS}

    @abstractmethod
    def replace_layers(self, layers: Mapping[str, Frame], *, revision: str,
                       version: tuple[dict[str, Any], bytes] | None = None,
                       live_version: int | None = None) -> int | None:
        """Replace every layer of the package atomically; ``revision`` identifies the content.

        In the same transaction, ``version`` (metadata, boundary blob) is kept as a new boundary version,
        or ``live_version`` names the kept version whose boundaries the new layers hold; either becomes
        the live version (returned)."""

    # boundary versions (gridmap.versions; rows are never changed or deleted) ---------------------
    @abstractmethod
    def insert_boundary_version(self, version: dict[str, Any], blob: bytes) -> int:
        """Keep a version without touching the live layers (scheduled, or in force only in the past)."""

    @abstractmethod
    def boundary_versions(self) -> list[dict[str, Any]]:
        """Every version's metadata (no blobs), by ``effective_from`` then id."""

    @abstractmethod
    def boundary_version_blob(self, version_id: int) -> bytes | None: ...

    @abstractmethod
    def live_boundary_version(self) -> int | None:
        """The version whose boundaries the live layers hold; None before versions were kept."""

    @abstractmethod
    def revision(self) -> str | None:
        """Content hash of the imported package, None when nothing was imported yet."""

    def is_empty(self) -> bool:
        return self.revision() is None

    # incidents: every write is one transaction, committed durably before it returns -------------
    @abstractmethod
    def insert_incident(self, record: dict[str, Any], event: dict[str, Any], *,
                        idempotency_key: str | None = None, idempotency_scope: str = "",
                        request_hash: str = "") -> tuple[int, bool]:
        """Store a new incident with its first audit event; (id, created). An idempotency key is
        looked up only within ``idempotency_scope`` (who sent it) and expires after a day."""

    @abstractmethod
    def insert_incidents(self, rows: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> int:
        """Bulk insert of incidents with their events (sample history)."""

    @abstractmethod
    def get_incident(self, incident_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def update_incident(self, incident_id: int, *, version: int, changes: dict[str, Any],
                        event: dict[str, Any]) -> dict[str, Any]:
        """Compare-and-set on ``version``; raises Conflict when someone else changed it first."""

    @abstractmethod
    def incident_events(self, incident_id: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def query_incidents(self, query: IncidentQuery, *, limit: int | None = None, offset: int = 0,
                        columns: str = "*") -> tuple[list[dict[str, Any]], int]:
        """Matching incidents, newest first, and the total count before paging."""

    @abstractmethod
    def incident_counts_by_version(self, query: IncidentQuery) -> dict[tuple[str, int], int]:
        """Incidents matching ``query`` per (grid, boundary version they were routed under); those
        routed before versions were kept, or outside every grid, are left out."""

    @abstractmethod
    def incident_tally(self, query: IncidentQuery, *, now: str) -> IncidentTally:
        """Counts, sums and middle durations over the matching incidents (``now``: for overdue)."""

    @abstractmethod
    def incident_revision(self) -> str:
        """Changes whenever any incident is written, in the same transaction; never repeats. For caches."""

    @abstractmethod
    def next_incident_due(self, now: str) -> str | None:
        """The earliest due time at or after ``now`` of an incident still open: until then, which
        incidents are overdue stays as it is at ``now`` (unless an incident is written)."""

    @abstractmethod
    def insert_token(self, *, token_id: str, token_hash: str, role: str, worker_code: str | None,
                     label: str | None, created_at: str) -> None: ...

    @abstractmethod
    def find_token(self, token_hash: str) -> dict[str, Any] | None:
        """The live (not revoked) token with this hash."""

    @abstractmethod
    def revoke_token(self, token_id: str, *, at: str) -> bool: ...

    @abstractmethod
    def secret(self) -> str:
        """The receipt secret: configured, or kept beside the store (never inside what is shared)."""

    def watch_revisions(self, callback: Callable[[str], None]) -> Callable[[], None] | None:
        """Call ``callback(revision)`` from a background thread whenever any process changes the package
        revision; returns a function that stops watching, or None when the backend cannot announce
        changes (then readers check ``revision()`` now and then)."""
        return None

    @abstractmethod
    def schema_version(self) -> int:
        """The layout version of the service tables this store holds (0: none yet); ``migrate`` raises it."""

    def migrate(self) -> None:
        """Upgrade a store written by an earlier release in place; safe to call again."""

    def checkpoint(self) -> None:
        """Make everything written so far visible in the store's files."""

    def close(self) -> None:
        pass

    # sessions (browser sign-in, ``gridmap.sessions``) -----------------------------------------------
    @abstractmethod
    def insert_session(self, record: dict[str, Any]) -> None:
        """Store a session: id_hash, csrf, role, worker_code, token_id, token_hash, created_at, expires_at."""

    @abstractmethod
    def find_session(self, id_hash: str) -> dict[str, Any] | None:
        """The session with this id hash and ``token_live``: is the token it was opened with still valid."""

    @abstractmethod
    def end_session(self, id_hash: str, *, at: str) -> bool: ...

    @abstractmethod
    def purge_sessions(self, *, before: str) -> int:
        """Delete sessions that expired before ``before``; returns how many."""

    # planning scenarios (``gridmap.planning.scenarios``): written once, never changed --------------
    @abstractmethod
    def insert_scenario(self, record: dict[str, Any]) -> int:
        """Store a siting run: name, created_by, created_at, revision, parameters, summary, proposals; its id."""

    @abstractmethod
    def get_scenario(self, scenario_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_scenarios(self, *, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Scenarios newest first without their proposals, and the total count before paging."""

    # staff-maintained records (addresses, aliases, co-governance): a JSON body per record, every
    # write compare-and-set and logged with its before and after in the same transaction -----------
    @abstractmethod
    def insert_entities(self, kind: str, records: Iterable[dict[str, Any]], *, actor: str, at: str,
                        action: str = "create") -> list[dict[str, Any]]:
        """Store new records of a kind in one transaction, numbered ``n`` from the kind's highest; all
        or none (a ``key`` already taken raises Conflict). Lifted columns (``key``, ``community_code``,
        ``grid_code``, ``status``) are read from the record's fields of the same names."""

    @abstractmethod
    def update_entity(self, kind: str, n: int, *, version: int, record: dict[str, Any], actor: str, at: str,
                      action: str = "update") -> dict[str, Any]:
        """Replace a record's body; compare-and-set on ``version`` (Conflict when it moved on)."""

    @abstractmethod
    def get_entity(self, kind: str, n: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def find_entity(self, kind: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def query_entities(self, query: EntityQuery, *, limit: int | None = None, offset: int = 0
                       ) -> tuple[list[dict[str, Any]], int]:
        """Matching records in creation order, and the total count before paging."""

    @abstractmethod
    def entity_changes(self, kind: str, n: int | None = None, *, after_seq: int = 0) -> list[dict[str, Any]]:
        """The change log (who, when, action, before, after), oldest first."""

    @abstractmethod
    def entity_seq(self, kind: str) -> int:
        """The newest change's number of the kind; other processes poll it to apply changes."""

    @abstractmethod
    def count_unmatched(self, counts: dict[tuple[str, str], int], *, at: str) -> None:
        """Add (text, community code) → count of addresses not placed, on the day of ``at``."""

    @abstractmethod
    def unmatched_addresses(self, *, since: str, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Texts not placed since the day of ``since``, most frequent first: text, community_code,
        count, last_seen; and how many texts there are."""

    # incident photos (``gridmap.incidents.photos``): stripped JPEGs beside the incidents, written once --
    @abstractmethod
    def insert_photos(self, incident_id: int, photos: Sequence[dict[str, Any]], *, event: dict[str, Any],
                      limit: int) -> None:
        """Store photos of one stage of an incident and append ``event`` to its history, in one
        transaction: all or none, and nothing of a failed call is left behind (files included).

        Each photo: ``PHOTO_COLUMNS`` of ``gridmap.store.photo_tables`` (``incident_id`` is this one)
        and the bytes ``image`` and ``thumbnail``. The event's ``from_status`` and ``to_status`` are the
        incident's status as the transaction reads it. Raises NotFound when the incident does not exist,
        Conflict when the stage would then hold more than ``limit`` photos (two uploads at once)."""

    @abstractmethod
    def incident_photos(self, incident_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Metadata (``PHOTO_COLUMNS``, no bytes) of the photos of these incidents, each incident's in the
        order they were added."""

    @abstractmethod
    def get_photo(self, photo_id: str) -> dict[str, Any] | None:
        """One photo's metadata, None when there is none with this id."""

    @abstractmethod
    def photo_bytes(self, photo_id: str, *, thumbnail: bool = False) -> bytes | None:
        """The stored JPEG (or its thumbnail); None when there is none."""
