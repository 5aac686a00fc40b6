"""``GET /api/v1/observations`` takes a real Unix time: NaN or infinity is a 422 naming ``since``, not an empty
page that looks like "nothing ran"."""

from __future__ import annotations

import pytest

from tests.http.conftest import Api


@pytest.mark.parametrize("since", ["nan", "inf", "-inf"])
def test_since_must_be_a_finite_time(api: Api, since: str) -> None:
    with api.client("read") as http:
        refused = http.get("/api/v1/observations", params={"since": since})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == "query.since"
        assert http.get("/api/v1/observations", params={"since": 0}).status_code == 200
