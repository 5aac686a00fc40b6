"""``/api/v1/tokens``: who may call the API (an ``admin`` token manages them, as ``pepper token`` does)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from pepper.errors import TokenNotFoundError
from pepper.http.auth import ADMIN
from pepper.http.lists import Page
from pepper.http.routes import runtime_of
from pepper.http.tokens import Scope, create_token


class NewToken(BaseModel):
    name: str
    scope: Scope


router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("", dependencies=[ADMIN], response_model=Page)
def list_tokens(request: Request) -> Page:
    """Every token's name, scope and times, oldest first; never a secret."""
    return Page(items=[record.to_dict() for record in runtime_of(request).store.tokens.list()])


@router.post("", dependencies=[ADMIN], status_code=201, response_model=dict[str, Any])
def create(request: Request, body: NewToken) -> dict[str, Any]:
    """A new token; its secret is in this answer only (it is stored hashed)."""
    now = time.time()
    secret = create_token(runtime_of(request).store, body.name, body.scope, now)
    return {"name": body.name, "scope": body.scope.value, "created_at": now, "token": secret}


@router.delete("/{name}", dependencies=[ADMIN], response_model=dict[str, Any])
def revoke(request: Request, name: str) -> dict[str, Any]:
    """Revoke a token: it stops working at once."""
    if not runtime_of(request).store.tokens.revoke(name, time.time()):
        raise TokenNotFoundError(name)
    return {"name": name, "revoked": True}
