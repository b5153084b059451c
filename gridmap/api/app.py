"""App factory and lifespan: the store is opened and the coverage index built once per process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridmap.api import docs, errors, observability, ratelimit
from gridmap.api.limits import BodyLimitMiddleware
from gridmap.api.routers import admin, areas, health, incidents, lookup, open311
from gridmap.api.routers import activities as activity_routes
from gridmap.api.routers import cogov_report as cogov_report_routes
from gridmap.api.routers import console as console_routes
from gridmap.api.routers import patrols as patrol_routes
from gridmap.api.routers import photos as photo_routes
from gridmap.api.routers import addresses as address_routes
from gridmap.api.routers import lists as list_routes
from gridmap.api.routers import planning as planning_routes
from gridmap.api.routers import residents as resident_routes
from gridmap.api.routers import registrations as registration_routes
from gridmap.api.routers import maps as map_routes
from gridmap.api.routers import ogc as ogc_routes
from gridmap.api.routers import session as session_routes
from gridmap.api.routers import tiles as tile_routes
from gridmap.api.routers import topology as topology_routes
from gridmap.api.routers import versions as version_routes
from gridmap.bootstrap import open_configured_store
from gridmap.coverage.library_edits import UnmatchedLog
from gridmap.coverage.live import LiveCoverage
from gridmap.errors import GridmapError
from gridmap.settings import Settings, get_settings
from gridmap.versions.coverage import VersionedCoverage

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_configured_store(settings)
        if settings.server_mode:
            store.secret()  # without GRIDMAP_SECRET server mode stops here, before it takes reports it cannot sign
        app.state.settings = settings
        app.state.store = store
        app.state.coverage = LiveCoverage(store)
        app.state.unmatched = UnmatchedLog()
        app.state.versions = VersionedCoverage(store, app.state.coverage)
        app.state.versions.start()
        observability.watch_store(app)
        try:
            yield
        finally:
            app.state.versions.close()
            _flush_unmatched(app)
            app.state.coverage.close()  # a background rebuild under way is dropped, not logged as a failure
            store.close()

    app = FastAPI(
        title="gridmap",
        summary="网格化服务管理：谁负责这个地点",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    errors.register(app)
    ratelimit.register(app, settings)
    app.add_middleware(BodyLimitMiddleware, **BodyLimitMiddleware.options(settings))  # bytes read, not declared
    docs.register(app)
    map_routes.register(app, settings)
    session_routes.register(app, settings)
    resident_routes.register(app)
    console_routes.register(app, settings)
    for router in (health.router, lookup.router, areas.router, incidents.router, open311.router, admin.router):
        app.include_router(router)
    app.include_router(planning_routes.router)
    app.include_router(tile_routes.router)
    for router in (registration_routes.router, list_routes.router):
        app.include_router(router)
    for router in (activity_routes.router, patrol_routes.router, cogov_report_routes.router):
        app.include_router(router)
    app.include_router(address_routes.router)
    app.include_router(ogc_routes.router)
    app.include_router(topology_routes.router)
    app.include_router(photo_routes.router)
    app.include_router(version_routes.router)
    observability.register(app)  # added last, so outermost: every request is logged and timed, refused ones too
    return app


def _flush_unmatched(app: FastAPI) -> None:
    """Counts of not-found addresses still in memory are written on the way out (a busy store loses them)."""
    try:
        app.state.unmatched.flush(app.state.store)
    except GridmapError as exc:
        log.warning("not-found address counts not written at shutdown: %s", exc.message)
