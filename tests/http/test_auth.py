"""Who may call what: every route needs a token of the right scope; bodies over 1 MiB are refused."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from pepper.http.tokens import create_token, revoke_token
from tests.http.conftest import Api

#: Routes anyone may read: they describe the API and reveal no data.
OPEN = {"/api/v1/openapi.json", "/api/v1/docs"}
_METHODS = ("get", "post", "put", "patch", "delete")


def _operations(api: Api) -> Iterator[tuple[str, str, bool]]:
    """Every operation of the app's OpenAPI document: method, a concrete path, and whether it changes state."""
    with api.client(None) as anonymous:
        document = anonymous.get("/api/v1/openapi.json").json()
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
            bad_token = anonymous.request(method, path, json={}, headers={"Authorization": "Bearer pep_wrong"})
            assert bad_token.status_code == 401, (method, path)
            if writes and path != "/api/v1/plan":  # planning changes nothing: a read token may plan
                too_small = reader.request(method, path, json={})
                assert too_small.status_code == 403, (method, path, too_small.text)
                assert too_small.json()["error"]["type"] == "ScopeError"
        for path in OPEN:
            assert anonymous.get(path).status_code == 200


def test_a_revoked_token_stops_working_at_once(api: Api) -> None:
    secret = create_token(api.runtime.store, "short-lived", "read", time.time())
    headers = {"Authorization": f"Bearer {secret}"}
    with api.client(None) as client:
        before = client.get("/api/v1/tasks", headers=headers)
        assert revoke_token(api.runtime.store, "short-lived")
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
