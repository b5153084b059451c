"""Dependencies shared by routers, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from gridmap.coverage.service import Coverage
from gridmap.errors import Forbidden, Unauthorized
from gridmap.settings import Settings
from gridmap.store.base import Store


# Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a thread
# pool, which costs more than the lookups they serve.


def coverage_of(request: Request) -> Coverage:
    """The current coverage index (rebuilt when the store's content changed)."""
    return request.app.state.coverage.get()


async def get_coverage(request: Request) -> Coverage:
    return coverage_of(request)


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def require_admin(
    settings: Annotated[Settings, Depends(get_app_settings)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    if not settings.admin_token:
        raise Forbidden("未配置管理令牌（GRIDMAP_ADMIN_TOKEN），管理接口已关闭")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("需要管理令牌：Authorization: Bearer <token>")
    if not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise Forbidden("管理令牌无效")


CoverageDep = Annotated[Coverage, Depends(get_coverage)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
AdminDep = Depends(require_admin)
