"""The tenant dashboard: ``GET /dashboard`` and its static assets under ``/dashboard/assets/``.

The page is public HTML; a tenant signs in *in the page* with an API token, which the page
keeps in ``sessionStorage`` and sends as ``Authorization: Bearer`` to ``GET /v1/analytics``
(http-api.md, "Templates, links, analytics"). The token never appears in a URL, so it is in
no access log, history entry or ``Referer``. Everything the page needs comes from the
gateway itself, never a CDN, so it works offline:

* our own page code (``dashboard_static/``: HTML, JS, CSS), shipped as package data;
* the charting library, uPlot (MIT, ~50 KB), installed by ``make`` from the npm registry
  with ``npm ci --prefix web`` (``web/package.json`` and its lock pin the version). It is
  not committed: when it is missing, its asset answers 404 and the page still shows every
  figure in its tables, with a note that the charts need ``make``.

Only the files listed in ``_ASSETS`` are served (no path from the request reaches the file
system). The page's Content-Security-Policy allows scripts, styles and requests only from
the gateway itself.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from .problems import ApiError

__all__ = ["VENDOR_DIR", "dashboard_handlers", "vendor_installed"]

_HERE = Path(__file__).resolve().parent
_STATIC = _HERE / "dashboard_static"
#: Where ``make`` (``npm ci --prefix web``) puts uPlot in a clone of the repository.
VENDOR_DIR = _HERE.parents[1] / "web" / "node_modules" / "uplot" / "dist"

_JS = "text/javascript"  # Litestar adds "; charset=utf-8" to text types
_CSS = "text/css"
#: Public name → (file, media type). Vendor files are looked for under VENDOR_DIR.
_ASSETS: dict[str, tuple[Path, str]] = {
    "dashboard.js": (_STATIC / "dashboard.js", _JS),
    "charts.js": (_STATIC / "charts.js", _JS),
    "dashboard.css": (_STATIC / "dashboard.css", _CSS),
    "uPlot.iife.min.js": (VENDOR_DIR / "uPlot.iife.min.js", _JS),
    "uPlot.min.css": (VENDOR_DIR / "uPlot.min.css", _CSS),
}

_PAGE_HEADERS = {
    # Scripts, styles, requests: the gateway only (no CDN, no inline script). uPlot sizes
    # its elements through the CSSOM, which CSP does not restrict.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=300"}


def vendor_installed() -> bool:
    """True when ``make`` has installed the charting library."""
    return (VENDOR_DIR / "uPlot.iife.min.js").is_file()


@cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


def dashboard_handlers() -> list[HTTPRouteHandler]:
    """The page and asset routes, for ``HttpApi``'s route list (both public, neither in
    the OpenAPI document: they are a page, not API)."""

    @get("/dashboard", include_in_schema=False, opt={"public": True})
    async def page() -> Response[Any]:
        return Response(_read(_STATIC / "index.html"), media_type="text/html",
                        headers=_PAGE_HEADERS)

    @get("/dashboard/assets/{name:str}", include_in_schema=False, opt={"public": True})
    async def asset(name: FromPath[str]) -> Response[Any]:
        entry = _ASSETS.get(name)
        if entry is None:
            raise ApiError(404, "not_found", f"no dashboard asset {name!r}")
        path, media_type = entry
        if not path.is_file():  # only the vendor files can be missing (not yet installed)
            raise ApiError(404, "not_found", f"{name} is not installed: run make "
                                             "(npm ci --prefix web)")
        return Response(_read(path), media_type=media_type, headers=_ASSET_HEADERS)

    return [page, asset]
