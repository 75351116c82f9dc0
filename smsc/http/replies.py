"""What every HTTP route shares: JSON answers, the bearer security requirement of the
OpenAPI document, the caller's tenant, JSON-only request bodies, and a store write awaited
as the answer's condition (503 ``store_unavailable`` when it fails)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response

from config import TenantConfig
from routing.repository import Durable

from .errors import is_json
from .problems import ApiError

__all__ = ["BEARER", "JSON", "await_durable", "json_response", "raw_json", "require_json",
           "tenant_of"]

JSON = "application/json"
# The security requirement of every route but /health, /l/{code}, the dashboard and docs.
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_encoder = msgspec.json.Encoder()


def json_response(value: object, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response[Any]:
    """``value`` (a Struct, or plain data) encoded by msgspec as the answer's body."""
    return Response(_encoder.encode(value), status_code=status, media_type=JSON,
                    headers=headers)


def raw_json(body: bytes, status: int, headers: dict[str, str] | None) -> Response[Any]:
    """An answer whose JSON body is already encoded (a kept idempotent answer)."""
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def tenant_of(request: Request[Any, Any, Any]) -> TenantConfig:
    """The tenant the request's token stands for (set by ``middleware.BearerAuth``)."""
    tenant: TenantConfig = request.scope["user"]
    return tenant


def require_json(request: Request[Any, Any, Any]) -> None:
    """415 unless the body is declared JSON."""
    if not is_json(request):
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")


async def await_durable(durable: Durable) -> None:
    """Wait until ``durable`` is stored; a store failure is a 503 the caller may retry."""
    try:
        await asyncio.shield(durable)  # type: ignore[arg-type]
    except Exception as exc:
        raise ApiError(503, "store_unavailable", f"the store failed: {exc}",
                       headers={"Retry-After": "1"}) from None
