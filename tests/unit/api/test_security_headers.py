"""Every answer tells the browser not to sniff types, frame us or leak referrers; the dashboard page may load
only what this server serves; a 405 says which methods there are; /metrics names its charset once."""

from __future__ import annotations

import pytest

from tests.unit.api.conftest import Api


@pytest.mark.parametrize("path", ["/api/tasks", "/dashboard", "/dashboard/assets/main.js", "/metrics"])
async def test_every_answer_carries_the_security_headers(api: Api, path: str) -> None:
    headers = (await api.client.get(path)).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


async def test_the_dashboard_page_has_a_content_security_policy_and_the_api_needs_none(api: Api) -> None:
    page = (await api.client.get("/dashboard")).headers["content-security-policy"]
    assert "default-src 'self'" in page and "frame-ancestors 'none'" in page
    assert "content-security-policy" not in (await api.client.get("/api/tasks")).headers


async def test_a_405_names_the_allowed_methods_and_metrics_its_charset_once(api: Api) -> None:
    refused = await api.client.delete("/api/tasks")
    assert refused.status_code == 405 and {"GET", "POST"} <= set(
        refused.headers["allow"].replace(" ", "").split(",")
    )
    assert (await api.client.get("/metrics")).headers["content-type"].count("charset") == 1
