"""ASGI layers around the HTTP API: bearer-token authentication before any route work, and a
count of every answer's status for the metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from .tokens import Tokens

__all__ = ["BearerAuth", "counted"]


class BearerAuth(AbstractAuthenticationMiddleware):
    """Authenticates every request before anything else runs (the body is not read for a
    bad token); the tenant becomes the connection's ``user``. Routes with ``opt={"public":
    True}`` and the API reference pages need no token."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        super().__init__(app, exclude=["^/docs"], exclude_from_auth_key="public")
        self.tokens = tokens

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]
                                   ) -> AuthenticationResult:
        peer = connection.client.host if connection.client else ""
        tenant = self.tokens.tenant(connection.headers.get("authorization"), peer)
        return AuthenticationResult(user=tenant, auth=None)


def counted(app: Any, count: Callable[[int], None]) -> Any:
    """``app`` with every response's status passed to ``count`` (the metrics)."""
    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                count(int(message["status"]))
            await send(message)

        await app(scope, receive, counting_send)

    return wrapper
