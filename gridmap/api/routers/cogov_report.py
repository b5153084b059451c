"""The co-governance report (issue #13 §5) as JSON, CSV or .xlsx."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ActorDep, CoverageDep, StoreDep
from gridmap.api.routers.activities import Since, Until
from gridmap.cogov import report

router = APIRouter(prefix="/v1", tags=["co-governance"])


@router.get("/cogovernance/report", summary="共建共治报表：报到、活动、三清单、议事协商与调解、巡查，附综述（JSON、CSV 或 Excel）")
async def cogovernance_report(
    store: StoreDep, coverage: CoverageDep, actor: ActorDep,
    community: Annotated[str | None, Query(description="社区编码（不填为全县；网格员为本社区）")] = None,
    since: Since = None, until: Until = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json、csv 或 xlsx")] = "json",
) -> Any:
    figures = await run_in_threadpool(lambda: report.build(store=store, coverage=coverage, actor=actor,
                                                           community=community, since=since, until=until))
    if format == "json":
        return figures
    content, media_type, ext = report.as_file(figures, format)
    name = f"cogovernance-{figures['scope']['community'] or 'county'}.{ext}"
    return Response(content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})
