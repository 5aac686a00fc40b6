"""Who may call what: every route needs a token of the right scope; bodies over 1 MiB are refused."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from pepper.http.tokens import create_token
from tests.http.conftest import Api

#: The API's description and docs: not operations of the document, and guarded all the same.
DESCRIPTION = {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/docs/swagger-ui-bundle.js"}
_METHODS = ("get", "post", "put", "patch", "delete")
#: Questions posted with a body that change nothing (a plan, the choice of an agent): a read token may ask them.
READ_POSTS = {"/api/v1/plan", "/api/v1/agents/select", "/api/v1/agents/rank", "/api/v1/workload/plan"}


def _operations(api: Api) -> Iterator[tuple[str, str, bool]]:
    """Every operation of the app's OpenAPI document: method, a concrete path, and whether it changes state."""
    with api.client("read") as reader:
        document = reader.get("/api/v1/openapi.json").json()
    for template, item in document["paths"].items():
        path = re.sub(r"\{[^}]+\}", "some-id", template)
        for method in _METHODS:
            if method in item:
                yield method.upper(), path, method != "get"


def test_every_route_needs_a_token_and_writes_need_the_write_scope(api: Api) -> None:
    operations = list(_operations(api))
    assert len(operations) >= 25
    assert ("GET", "/metrics", False) in operations
    with api.client(None) as anonymous, api.client("read") as reader:
        for method, path, writes in operations:
            no_token = anonymous.request(method, path, json={})
            assert no_token.status_code == 401, (method, path, no_token.text)
            assert no_token.headers["www-authenticate"] == "Bearer"
            assert no_token.json()["error"]["type"] == "AuthenticationError"
            bad_token = anonymous.request(method, path, json={}, headers={"Authorization": "Bearer pepper_wrong"})
            assert bad_token.status_code == 401, (method, path)
            garbled = anonymous.request(
                method, path, content=b"{not json", headers={"Content-Type": "application/json"}
            )
            assert garbled.status_code == 401, (method, path, garbled.text)  # the token is checked before the body
            if path.startswith("/api/v1/tokens"):  # tokens are an admin's: a write token is not enough
                with api.client("write") as writer:
                    too_small = writer.request(method, path, json={})
                assert too_small.status_code == 403, (method, path, too_small.text)
            elif writes and path not in READ_POSTS:
                too_small = reader.request(method, path, json={})
                assert too_small.status_code == 403, (method, path, too_small.text)
                assert too_small.json()["error"]["type"] == "ScopeError"
        for path in READ_POSTS:
            assert reader.post(path, json={}).status_code in (400, 422), path  # let in, and the body checked
        for path in DESCRIPTION:
            assert anonymous.get(path).status_code == 401, path
            assert reader.get(path).status_code == 200, path


def test_a_revoked_token_stops_working_at_once(api: Api) -> None:
    secret = create_token(api.runtime.store, "short-lived", "read", time.time())
    headers = {"Authorization": f"Bearer {secret}"}
    with api.client(None) as client:
        before = client.get("/api/v1/tasks", headers=headers)
        assert api.runtime.store.tokens.revoke("short-lived", time.time())
        after = client.get("/api/v1/tasks", headers=headers)
    assert before.status_code == 200
    assert after.status_code == 401


def test_a_body_over_one_mebibyte_is_refused_with_413(api: Api) -> None:
    big = b'{"task_type": "echo", "inputs": "' + b"x" * (1024 * 1024) + b'"}'

    def streamed() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    with api.client() as client:
        declared = client.post("/api/v1/tasks", content=big, headers={"content-type": "application/json"})
        chunked = client.post("/api/v1/tasks", content=streamed(), headers={"content-type": "application/json"})
        fine = client.post("/api/v1/tasks", json={"task_type": "echo", "inputs": "x" * 1000})
    for answer in (declared, chunked):
        assert answer.status_code == 413
        assert answer.json()["error"]["type"] == "RequestTooLargeError"
    assert fine.status_code == 201


def test_an_admin_manages_tokens_over_http_and_a_revoked_one_stops_at_once(api: Api) -> None:
    admin_secret = create_token(api.runtime.store, "root", "admin", time.time())
    admin = {"Authorization": f"Bearer {admin_secret}"}
    with api.client(None) as client:
        made = client.post("/api/v1/tokens", json={"name": "ci", "scope": "read"}, headers=admin)
        assert made.status_code == 201 and made.json()["token"].startswith("pepper_")
        ci = {"Authorization": f"Bearer {made.json()['token']}"}
        listed = client.get("/api/v1/tokens", headers=admin).json()["items"]
        assert {"name": "ci", "scope": "read"}.items() <= next(t for t in listed if t["name"] == "ci").items()
        assert all("token" not in t and "hash" not in t for t in listed)
        assert client.get("/api/v1/tasks", headers=ci).status_code == 200
        assert client.delete("/api/v1/tokens/ci", headers=admin).json() == {"name": "ci", "revoked": True}
        assert client.get("/api/v1/tasks", headers=ci).status_code == 401
        assert client.delete("/api/v1/tokens/ci", headers=admin).status_code == 404
        assert client.post("/api/v1/tokens", json={"name": "x y", "scope": "read"}, headers=admin).status_code in (
            400,
            422,
        )
