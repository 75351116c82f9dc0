"""ASGI layers around the HTTP API: bearer-token authentication before any route work, and a
count of every answer's status for the metrics.

Authentication consults the gateway's ban table (``smsc.bans``, shared with the SMPP door)
first: a banned address gets 429 ``too_many_auth_failures`` with ``Retry-After`` before its
token is looked at; an unknown token counts as a failed authentication of that address.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from ..bans import Bans
from .problems import ApiError
from .tokens import Tokens

__all__ = ["BearerAuth", "counted"]


class BearerAuth(AbstractAuthenticationMiddleware):
    """Authenticates every request before anything else runs (the body is not read for a
    bad token); the tenant becomes the connection's ``user``. Routes with ``opt={"public":
    True}`` and the API reference pages need no token."""

    def __init__(self, app: ASGIApp, tokens: Tokens, bans: Bans | None = None,
                 wall: Callable[[], float] | None = None) -> None:
        super().__init__(app, exclude=["^/docs"], exclude_from_auth_key="public")
        self.tokens = tokens
        self.bans = bans
        self.wall = wall

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]
                                   ) -> AuthenticationResult:
        peer = connection.client.host if connection.client else ""
        authorization = connection.headers.get("authorization")
        bans, wall = self.bans, self.wall
        if bans is None or wall is None:
            return AuthenticationResult(user=self.tokens.tenant(authorization, peer), auth=None)
        now = wall()
        left = bans.banned_for(peer, now)
        if left > 0:
            raise ApiError(429, "too_many_auth_failures",
                           "too many failed authentications from this address; retry later",
                           headers={"Retry-After": str(max(1, math.ceil(left)))})
        try:
            tenant = self.tokens.tenant(authorization, peer)
        except ApiError as exc:
            if exc.status == 401 and authorization:  # a token was tried (not just missing)
                bans.failure(peer, "http", now)
            raise
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
