"""``GET /v1/analytics``: a tenant's figures per day, hour, operator, country or originator.

Read from the rollups (``routing.sqlite.rollups``), never by scanning messages
(http-api.md, "Templates, links, analytics"). The answer is
``{since, until, group_by, groups: [figures], totals: figures}``; what a figure means is in
``AnalyticsGroup``'s field descriptions (and so in /openapi.json).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

import msgspec
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery

from encoding.constants import CommandStatus
from routing.analytics import RECEIPT_ERROR
from routing.sqlite.rollups import GroupFigures, SqliteAnalytics

from .errors import documented_errors
from .problems import ApiError
from .replies import BEARER, json_response, tenant_of

__all__ = ["analytics_handlers", "AnalyticsGroup", "AnalyticsReport", "error_name", "merged",
           "shown"]

_DEFAULT_SPAN_S = 7 * 86400
_MAX_SPAN_S = 400 * 86400

GroupByName = Literal["day", "hour", "operator", "country", "originator"]


class AnalyticsGroup(msgspec.Struct, kw_only=True):
    """The figures of one group. Counts go to the hour (UTC) their event happened in."""

    key: Annotated[str, msgspec.Meta(description=(
        "The group: a UTC day (YYYY-MM-DD), an hour (YYYY-MM-DDTHH:00:00Z), an operator name "
        "(\"\" for messages no operator took), an ISO 3166 region of the recipient (ZZ: "
        "unknown) or an originator as sent; \"total\" for totals"))]
    submitted: Annotated[int, msgspec.Meta(description=(
        "Messages accepted from the tenant (by operator: at their first move out of "
        "accepted)"))]
    delivered: int
    failed: Annotated[int, msgspec.Meta(description="Undeliverable, expired or rejected")]
    errors: Annotated[dict[str, int], msgspec.Meta(description=(
        "Failed messages by error: the SMPP command_status name (0xXXXXXXXX for one "
        "without a name), 'receipt err:NNN' for the error an operator's receipt gave, "
        "'unspecified' when there was no code"))]
    delivery_rate: Annotated[float | None, msgspec.Meta(description=(
        "delivered / (delivered + failed); null when neither happened"))]
    latency_p50_ms: Annotated[float | None, msgspec.Meta(description=(
        "Median accept -> delivered time, from fixed histogram buckets (interpolated); "
        "null without deliveries"))]
    latency_p95_ms: float | None
    parts: Annotated[int, msgspec.Meta(description=(
        "Parts billed: SMS parts operators acknowledged"))]
    clicks: Annotated[int, msgspec.Meta(description="Tracked-link clicks (bots left out)")]
    click_through_rate: Annotated[float | None, msgspec.Meta(description=(
        "clicks / delivered; null without deliveries"))]
    opt_outs: Annotated[int, msgspec.Meta(description=(
        "Opt-outs recorded (by time or country; no operator or originator owns one, so "
        "those groupings show 0 and the totals count them)"))]
    inbound: Annotated[int, msgspec.Meta(description=(
        "MO messages received (originator: the tenant's number they were sent to; country: "
        "the sender's)"))]


class AnalyticsReport(msgspec.Struct, kw_only=True):
    since: datetime
    until: datetime
    group_by: GroupByName
    groups: Annotated[list[AnalyticsGroup], msgspec.Meta(description=(
        "In key order; groups with nothing to show are left out"))]
    totals: AnalyticsGroup


class AnalyticsHost(Protocol):
    """What the handler needs from ``HttpApi``."""

    analytics: SqliteAnalytics | None
    wall: Callable[[], float]


def error_name(code: int) -> str:
    """How ``errors`` names a code: the command_status name (0xXXXXXXXX for one without),
    ``receipt err:NNN`` for an operator receipt's error, ``unspecified`` for none."""
    if not code:
        return "unspecified"
    if code >= RECEIPT_ERROR:
        return f"receipt err:{code - RECEIPT_ERROR:03d}"
    try:
        return CommandStatus(code).name
    except ValueError:
        return f"0x{code:08X}"


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000.0, 1) if seconds is not None else None


def shown(fig: GroupFigures) -> AnalyticsGroup:
    errors: dict[str, int] = {}
    for code, n in sorted(fig.errors.items()):
        name = error_name(code)
        errors[name] = errors.get(name, 0) + n
    return AnalyticsGroup(
        key=fig.key, submitted=fig.submitted, delivered=fig.delivered, failed=fig.failed,
        errors=errors, delivery_rate=fig.delivery_rate, latency_p50_ms=_ms(fig.latency(0.5)),
        latency_p95_ms=_ms(fig.latency(0.95)), parts=fig.parts, clicks=fig.clicks,
        click_through_rate=fig.click_through_rate, opt_outs=fig.opt_outs, inbound=fig.inbound)


def merged(groups: list[GroupFigures], key: str = "total") -> GroupFigures:
    """The sum of ``groups`` (histograms added bucket by bucket)."""
    total = GroupFigures(key=key)
    for g in groups:
        total.submitted += g.submitted
        total.delivered += g.delivered
        total.failed += g.failed
        total.parts += g.parts
        total.inbound += g.inbound
        total.clicks += g.clicks
        total.opt_outs += g.opt_outs
        for code, n in g.errors.items():
            total.errors[code] = total.errors.get(code, 0) + n
        if g.buckets:
            if not total.buckets:
                total.buckets = [0] * len(g.buckets)
            total.buckets = [a + b for a, b in zip(total.buckets, g.buckets, strict=True)]
    return total


def analytics_handlers(api: AnalyticsHost) -> list[HTTPRouteHandler]:
    @get("/v1/analytics", tags=["analytics"], summary="Traffic figures per group",
         security=BEARER, responses=documented_errors(400, 503),
         operation_id="get_analytics",
         description="The tenant's figures over [since, until) (RFC 3339; default: the last "
                     "7 days up to now; at most 400 days), grouped by UTC day, hour, "
                     "operator, recipient country or originator. Read from hourly rollups: "
                     "the hours that start from the start of since's hour and before until "
                     "are counted.")
    async def analytics(
            request: Request[Any, Any, Any],
            since: FromQuery[datetime | None] = None, until: FromQuery[datetime | None] = None,
            group_by: FromQuery[GroupByName] = "day",
    ) -> Response[AnalyticsReport]:
        tenant = tenant_of(request)
        source = api.analytics
        if source is None:
            raise ApiError(503, "unavailable", "analytics are not available on this gateway")
        end = _epoch(until) if until is not None else api.wall()
        start = _epoch(since) if since is not None else end - _DEFAULT_SPAN_S
        if end <= start:
            raise ApiError(400, "invalid_period", "until must be after since")
        if end - start > _MAX_SPAN_S:
            raise ApiError(400, "invalid_period", "the period is at most 400 days")
        groups = source.report(tenant.system_id, start, end, group_by)
        by_time = groups if group_by == "day" else source.report(
            tenant.system_id, start, end, "day")
        report = AnalyticsReport(
            since=datetime.fromtimestamp(start, UTC), until=datetime.fromtimestamp(end, UTC),
            group_by=group_by, groups=[shown(g) for g in groups],
            totals=shown(merged(by_time)))
        return json_response(report)

    return [analytics]




def _epoch(t: datetime) -> float:
    if t.tzinfo is None:  # RFC 3339 always has an offset; a bare time is taken as UTC
        t = t.replace(tzinfo=UTC)
    return t.timestamp()
