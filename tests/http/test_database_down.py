"""With its PostgreSQL database gone, the server answers 503 with a typed error (the token cannot be checked), never
500 "a bug"."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import pepper  # noqa: E402
from pepper.http.app import create_app  # noqa: E402
from pepper.http.server import ThreadedServer  # noqa: E402
from pepper.http.tokens import create_token  # noqa: E402
from tests.conftest import FAST  # noqa: E402
from tests.postgres_cluster import PostgresCluster, PostgresUnavailable  # noqa: E402


def test_an_unreachable_database_answers_503(tmp_path: object) -> None:
    cluster = PostgresCluster(startup_timeout=60.0)  # its own: this test stops it
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        pytest.skip("PostgreSQL tests skipped: " + exc.reason)
    try:
        cluster.create_database("down")
        settings = {**FAST, "busy_timeout": 1.0}
        local = pepper.Runtime(db=cluster.url("down"), home=f"{tmp_path}/home", **settings)
        try:
            secret = create_token(local.store, "reader", "read", time.time())
            server = ThreadedServer(create_app(local))
            url = server.start()
            try:
                headers = {"Authorization": f"Bearer {secret}"}
                assert httpx.get(f"{url}/api/v1/counts", headers=headers, timeout=60).status_code == 200
                cluster.stop()
                answer = httpx.get(f"{url}/api/v1/counts", headers=headers, timeout=120)
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["type"] == "StoreBusyError"
                assert cluster.url("down").split("@")[0].split(":")[-1] not in answer.text  # no password
            finally:
                server.stop()
        finally:
            local.close()
    finally:
        cluster.stop()
