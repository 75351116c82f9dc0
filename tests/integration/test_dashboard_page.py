"""The dashboard's routes over HTTP, without a browser (``test_dashboard.py`` drives one).

``GET /dashboard`` is public HTML with a Content-Security-Policy that allows the gateway's
own scripts, styles and requests only; everything the page loads is under
``/dashboard/assets/`` on the same gateway (no CDN: the page works offline), served with its
media type; an asset that is not on the list is a 404 problem, and no path reaches the file
system; the token is asked for in the page, not taken from the URL; the routes are not in
/openapi.json (they are a page, not API).
"""

from __future__ import annotations

import re

import pytest

from smsc.http.dashboard import vendor_installed
from tests.conftest import GatewayThread
from tests.httpkit import api_client

pytestmark = pytest.mark.timeout(60)


def test_page_and_assets_come_from_the_gateway(gateway: GatewayThread) -> None:
    with api_client(gateway.gateway.http_port, None) as client:
        r = client.get("/dashboard")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        csp = r.headers["content-security-policy"]
        for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                          "connect-src 'self'", "frame-ancestors 'none'"):
            assert directive in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        page = r.text
        assert 'id="token" type="password"' in page

        loaded = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert loaded, "the page loads nothing?"
        external = [u for u in loaded if not (u.startswith("/dashboard/assets/")
                                              or u.startswith("data:"))]
        assert external == [], "the page must load everything from the gateway"

        want = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
        for url in loaded:
            if url.startswith("data:"):
                continue
            if "uPlot" in url and not vendor_installed():
                continue  # make installs it (npm ci --prefix web)
            got = client.get(url)
            assert got.status_code == 200, (url, got.text)
            assert got.headers["content-type"] == want[url[url.rindex("."):]], url
            assert got.headers["x-content-type-options"] == "nosniff"
            assert got.content


@pytest.mark.parametrize("name", ["nothing.js", "..%2Fdashboard.py", "index.html",
                                  "%2Fetc%2Fpasswd"])
def test_only_listed_assets_are_served(gateway: GatewayThread, name: str) -> None:
    with api_client(gateway.gateway.http_port, None) as client:
        r = client.get(f"/dashboard/assets/{name}")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "not_found"


def test_the_page_is_not_in_the_api_document(gateway: GatewayThread) -> None:
    with api_client(gateway.gateway.http_port, None) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/dashboard")]
