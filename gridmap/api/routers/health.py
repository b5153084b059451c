from __future__ import annotations

from fastapi import APIRouter

from gridmap.api.deps import CoverageDep
from gridmap.api.responses import FastJSONResponse
from gridmap.models import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(coverage: CoverageDep) -> FastJSONResponse:
    return FastJSONResponse({"status": "ok", "revision": coverage.revision, "grids": len(coverage.grids)})
