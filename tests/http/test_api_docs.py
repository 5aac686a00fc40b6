"""The API's docs page is served by pepper alone: every file it references is pepper's, and needs a token."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pepper.http.auth import SESSION_COOKIE
from tests.http.conftest import Api

DOCS = "/api/v1/docs"
KINDS = {".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".svg": "image/svg+xml"}


class _References(HTMLParser):
    """Every URL a page references (scripts, styles, icons, links)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def test_the_docs_page_references_only_pepper_and_each_file_is_served_with_a_token_only(api: Api) -> None:
    with api.client("read") as reader, api.client(None) as anonymous:
        page = reader.get(DOCS)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert not re.search(r"(?i)(https?:)?//[a-z0-9]", page.text), "the page names another host"
        urls = _references(page.text)
        assets = [u for u in urls if u.startswith(f"{DOCS}/")]
        assert {f"{DOCS}/swagger-ui-bundle.js", f"{DOCS}/swagger-ui.css", f"{DOCS}/docs.js"} <= set(assets)
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            served = reader.get(url)
            name = url.rsplit("/", 1)[-1]
            kind = KINDS[name[name.rfind(".") :]] if "." in name else "text/html"  # "/": the dashboard
            assert served.status_code == 200, url
            assert served.headers["content-type"].startswith(kind), (url, served.headers["content-type"])
            assert len(served.content) > 0
        for url in [DOCS, *assets, "/api/v1/openapi.json"]:
            refused = anonymous.get(url)
            assert refused.status_code == 401, url
            assert refused.headers["www-authenticate"] == "Bearer"
            wrong = anonymous.get(url, headers={"Authorization": "Bearer pepper_wrong"})
            assert wrong.status_code == 401, url


def test_the_page_sets_up_swagger_ui_without_the_internet(api: Api) -> None:
    with api.client("read") as reader:
        script = reader.get(f"{DOCS}/docs.js").text
    assert '"/api/v1/openapi.json"' in script
    assert "validatorUrl: null" in script  # Swagger UI would otherwise ask a public validator about the document
    assert "X-CSRF-Token" in script  # a change sent with the session cookie carries the CSRF token


def test_a_browser_signed_in_to_the_dashboard_reads_the_docs_and_one_without_is_told_to_sign_in(api: Api) -> None:
    with api.client(None) as browser:
        refused = browser.get(DOCS)
        assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/html")
        assert 'href="/sign-in"' in refused.text and "pepper token create" in refused.text
        assert not re.search(r"(?i)(https?:)?//[a-z0-9]", refused.text)
        browser.cookies.set(SESSION_COOKIE, api.tokens["read"])
        assert browser.get(DOCS).status_code == 200
        assert browser.get(f"{DOCS}/swagger-ui.css").status_code == 200
        assert "/api/v1/tasks" in browser.get("/api/v1/openapi.json").json()["paths"]


def test_an_unknown_file_of_the_docs_is_not_found_and_says_what_there_is(api: Api) -> None:
    with api.client("read") as reader:
        missing = reader.get(f"{DOCS}/secrets.txt")
        climbing = reader.get(f"{DOCS}/..%2F..%2Fapp.py")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["type"] == "NotFoundError" and "swagger-ui-bundle.js" in error["message"]
    assert climbing.status_code == 404
