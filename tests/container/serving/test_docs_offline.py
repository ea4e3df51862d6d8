"""/docs works without the internet (issue 14 item 7): every script, stylesheet and icon the
page names is served by this server, and nothing on the page points elsewhere.

The check in a real browser (headless chromium: a screenshot, and its network log showing only
127.0.0.1 fetched by the page) is by hand, see docs/hostile-requests.md: chromium is not a CI
prerequisite. This test covers what the browser fetches.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.anyio

EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _page_urls(html: str) -> list[str]:
    parser = _AssetLinks()
    parser.feed(html)
    # The document URL Swagger UI fetches is in its init script.
    parser.urls += re.findall(r"url: '([^']+)'", html)
    return parser.urls


async def test_S7_docs_page_names_only_local_assets_and_each_is_served(settings_for, serve):
    async with serve(settings_for()) as served:
        response = await served.client.get("/docs")
        assert response.status_code == 200
        html = response.text
        assert "http://" not in html and "https://" not in html, "the page calls out"
        urls = _page_urls(html)
        assert any(url.endswith(".js") for url in urls), urls
        assert any(url.endswith(".css") for url in urls), urls
        assert "/openapi.json" in urls
        for url in urls:
            assert url.startswith("/"), f"{url} is not served by this server"
            asset = await served.client.get(url)
            assert asset.status_code == 200, url
            suffix = url[url.rfind("."):]
            if suffix in EXPECTED_TYPES:
                assert EXPECTED_TYPES[suffix] in asset.headers["content-type"], url
                assert len(asset.content) > 0, url


async def test_S7_swagger_ui_bundle_is_the_real_script_and_validation_stays_local(
    settings_for, serve
):
    async with serve(settings_for()) as served:
        html = (await served.client.get("/docs")).text
        bundle = await served.client.get("/docs-assets/swagger-ui-bundle.js")
        missing = await served.client.get("/docs-assets/nope.js")
    assert "SwaggerUIBundle" in bundle.text
    # Swagger UI would send the document to validator.swagger.io.
    assert '"validatorUrl": null' in html
    assert missing.status_code == 404
    assert missing.json()["code"] == 404


async def test_S7_no_redoc_page_whose_bundle_would_call_out(settings_for, serve):
    async with serve(settings_for()) as served:
        response = await served.client.get("/redoc")
    assert response.status_code == 404
