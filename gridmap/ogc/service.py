"""What each ``/ogc`` request answers, given the caller: the router hands over the store, the coverage of the
request, the actor and the query parameters; this module asks ``gridmap.access`` who may see what and the
documents module how to say it.

An answer is ``(body, media type, content CRS)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd

from gridmap import access
from gridmap.auth import Actor
from gridmap.ogc import crs, features, html
from gridmap.ogc.layers import COLLECTIONS, Collection, Tables, incidents_table

Answer = tuple[dict[str, Any] | str, str, str | None]
"""(body: a dictionary for JSON, a string for HTML; media type; the CRS of the coordinates, for ``Content-Crs``)."""


@dataclass(frozen=True)
class Request:
    """One request as the service sees it: who, over which data, at which URL, with which parameters."""

    store: Any
    coverage: Any
    actor: Actor
    root: str
    """The absolute URL of ``/ogc`` as the client called it (links are absolute, as GDAL and OWSLib need)."""
    params: Mapping[str, str]
    wants_html: bool = False


def _html(request: Request) -> bool:
    """``f=html``/``f=json`` decide; without ``f``, a browser (``Accept: text/html``) gets the page."""
    f = request.params.get("f")
    if f is not None and f not in ("json", "html"):
        raise features.InvalidParameter(f"参数 f 只能是 json 或 html：{f!r}")
    return f == "html" or (f is None and request.wants_html)


def _only(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.params) - allowed)
    if unknown:
        raise features.InvalidParameter(f"不支持的查询参数：{'、'.join(unknown)}")


def offered_crs(request: Request) -> list[str]:
    """The CRSs answers may be given in: the fixed ones and the Gauss–Krüger zone of the county's centre."""
    grids = request.coverage.grids
    lon = float(sum(grids.total_bounds[0::2]) / 2) if len(grids) else 111.0
    return crs.supported(lon)


def table_of(request: Request, tables: Tables, collection: Collection) -> gpd.GeoDataFrame:
    if collection.id == "incidents":
        return incidents_table(request.store, request.coverage, request.actor, now=datetime.now(UTC))
    return tables.table(collection.id, coverage=request.coverage, store=request.store)


def _collection(request: Request, name: str) -> Collection:
    access.check_ogc_collection(request.actor, name)
    return features.collection_of(name, access.ogc_collections(request.actor))


def landing(request: Request, *, docs_url: str) -> Answer:
    _only(request, frozenset({"f"}))
    as_html = _html(request)
    doc = features.landing(request.root, docs_url=docs_url, html=as_html)
    return (html.landing(doc), features.HTML, None) if as_html else (doc, features.JSON, None)


def conformance(request: Request) -> Answer:
    _only(request, frozenset({"f"}))
    doc = features.conformance()
    return (html.conformance(doc), features.HTML, None) if _html(request) else (doc, features.JSON, None)


def collections(request: Request, tables: Tables) -> Answer:
    _only(request, frozenset({"f"}))
    as_html = _html(request)
    entries = [(COLLECTIONS[name], table_of(request, tables, COLLECTIONS[name]))
               for name in access.ogc_collections(request.actor)]
    doc = features.collections_document(request.root, entries, offered_crs(request), html=as_html)
    return (html.collections(doc), features.HTML, None) if as_html else (doc, features.JSON, None)


def collection(request: Request, tables: Tables, name: str) -> Answer:
    found = _collection(request, name)
    _only(request, frozenset({"f"}))
    as_html = _html(request)
    doc = features.collection_document(request.root, found, table_of(request, tables, found), offered_crs(request),
                                       html=as_html)
    return (html.collection(doc), features.HTML, None) if as_html else (doc, features.JSON, None)


def queryables(request: Request, tables: Tables, name: str) -> Answer:
    found = _collection(request, name)
    _only(request, frozenset({"f"}))
    return features.queryables_document(request.root, found, table_of(request, tables, found)), features.SCHEMA_JSON, None


def items(request: Request, tables: Tables, name: str) -> Answer:
    found = _collection(request, name)
    as_html = _html(request)
    table = table_of(request, tables, found)
    query = features.parse_items_query(found, table, request.params, offered_crs(request))
    doc = features.items_document(request.root, found, table, query, request.params, html=as_html)
    return (html.items(doc, found.title), features.HTML, query.crs) if as_html else (doc, features.GEOJSON, query.crs)


def feature(request: Request, tables: Tables, name: str, feature_id: str) -> Answer:
    found = _collection(request, name)
    _only(request, frozenset({"f", "crs"}))
    output = features.parse_crs(request.params, "crs", offered_crs(request))
    as_html = _html(request)
    doc = features.feature_document(request.root, found, table_of(request, tables, found), feature_id, crs=output,
                                    html=as_html)
    return (html.feature(doc, found.title), features.HTML, output) if as_html else (doc, features.GEOJSON, output)
