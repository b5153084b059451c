"""Bearer tokens and the roles they carry. Only SHA-256 hashes of tokens are stored.

A token is looked up in the store on every request, so creating or revoking one (from the CLI or
the admin API, in any process) takes effect at once on every running server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from gridmap.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from gridmap.store.base import Store

ROLES: Final = ("admin", "dispatcher", "worker", "planner")
PUBLIC: Final = "public"


@dataclass(frozen=True)
class Actor:
    role: str
    worker_code: str | None = None
    token_id: str | None = None

    @property
    def label(self) -> str:
        """How the audit log names the actor: a role and a code or token id, never a person's data."""
        if self.role == PUBLIC:
            return "public"
        return f"{self.role}:{self.worker_code or self.token_id}"

    @property
    def is_staff(self) -> bool:
        return self.role in ("admin", "dispatcher")


ANONYMOUS: Final = Actor(PUBLIC)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_token(store: Store, *, role: str, worker_code: str | None = None, label: str | None = None,
                 known_workers: set[str] | None = None) -> tuple[str, str]:
    """Returns (token id, token). The token itself is shown once and never stored."""
    if role not in ROLES:
        raise InvalidInput(f"未知角色 {role!r}（可选：{', '.join(ROLES)}）")
    if role == "worker" and not worker_code:
        raise InvalidInput("网格员令牌必须绑定网格员编码（--worker）")
    if role != "worker" and worker_code:
        raise InvalidInput("只有 worker 角色的令牌可以绑定网格员")
    if worker_code and known_workers is not None and worker_code not in known_workers:
        raise NotFound(f"网格员 {worker_code} 不存在")
    token_id = secrets.token_hex(4)
    token = f"gm_{token_id}_{secrets.token_urlsafe(24)}"
    store.insert_token(token_id=token_id, token_hash=_hash(token), role=role, worker_code=worker_code,
                       label=label, created_at=now_iso())
    return token_id, token


def revoke_token(store: Store, token_id: str) -> None:
    if not store.revoke_token(token_id, at=now_iso()):
        raise NotFound(f"令牌 {token_id} 不存在或已撤销")


def authenticate(store: Store, authorization: str | None, *, admin_token: str | None = None) -> Actor:
    """The actor behind an ``Authorization`` header; no header is the public."""
    if not authorization:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("认证格式应为 Authorization: Bearer <token>")
    return verify_token(store, token, admin_token=admin_token)


SETTINGS_TOKEN_ID: Final = "settings"
"""The token id of ``GRIDMAP_ADMIN_TOKEN``, which has no row in the tokens table."""


def verify_token(store: Store, token: str, *, admin_token: str | None = None) -> Actor:
    """The actor a token stands for, for the Bearer header and the sign-in page alike.

    ``GRIDMAP_ADMIN_TOKEN`` is compared in constant time; other tokens are found by their SHA-256
    hash, so the lookup time says nothing about how close a guess was. Every failure reads the same.
    """
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Actor("admin", token_id=SETTINGS_TOKEN_ID)
    row = store.find_token(_hash(token)) if token else None
    if row is None:
        raise Unauthorized("令牌无效或已撤销")
    return Actor(row["role"], row["worker_code"], row["id"])


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which tokens (and session ids) are stored."""
    return _hash(token)


def require(actor: Actor, *roles: str) -> None:
    """401 for the public (a token would help), 403 for a signed-in role that may not."""
    if actor.role == PUBLIC and PUBLIC not in roles:
        raise Unauthorized("需要登录令牌：Authorization: Bearer <token>")
    if actor.role not in roles:
        raise Forbidden("没有权限执行此操作")
