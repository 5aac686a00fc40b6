"""Schemathesis over the OpenAPI document with a write token: no 5xx, and every answer matches its schema."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from tests.http.conftest import Api  # noqa: E402

#: The event stream never ends by itself (it is tested on its own).
SKIPPED = {"/api/v1/events"}


def test_the_api_answers_generated_requests_within_its_schema(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.tokens['write']}"}
    schema = schemathesis.openapi.from_url(f"{api.url}/api/v1/openapi.json", headers=headers)
    checked = []
    for found in schema.get_all_operations():
        operation = found.ok()
        if operation.path in SKIPPED:
            continue

        @given(operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        def answers(case: Any) -> None:
            if isinstance(case.query, dict) and "wait" in case.query:
                case.query["wait"] = 0  # waiting is tested on its own; here it would only slow the run
            case.call_and_validate(base_url=api.url, headers=headers, timeout=30,
                                   checks=[not_a_server_error, response_schema_conformance])  # fmt: skip

        answers()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 25
