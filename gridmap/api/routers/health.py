from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gridmap.api.deps import CoverageDep
from gridmap.models import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(coverage: CoverageDep) -> JSONResponse:
    return JSONResponse({"status": "ok", "revision": coverage.revision, "grids": len(coverage.grids)})
