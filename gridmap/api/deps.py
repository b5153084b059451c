"""Dependencies shared by routers, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from gridmap.coverage.service import Coverage
from gridmap.errors import Forbidden, Unauthorized
from gridmap.settings import Settings
from gridmap.store.base import Store


def get_coverage(request: Request) -> Coverage:
    return request.app.state.coverage.get()


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_admin(
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
