"""The dashboard is served by the app: one page for every client route, assets under /dashboard/assets/,
``/`` redirects to it, and none of it is in the OpenAPI schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skalds.entrypoints.dashboard.routes import ASSETS
from tests.unit.api.conftest import Api, open_api


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/", "/dashboard/tasks", "/dashboard/tasks/a%2Fb"])
async def test_every_dashboard_route_answers_the_page(api: Api, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/dashboard/assets/main.js">' in response.text


async def test_assets_are_served_and_a_missing_one_is_a_404(api: Api) -> None:
    script = await api.client.get("/dashboard/assets/pages/tasks.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["cache-control"] == "no-cache"
    missing = await api.client.get("/dashboard/assets/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"] == "NOT_FOUND"


async def test_the_root_redirects_to_the_dashboard(api: Api) -> None:
    response = await api.client.get("/", follow_redirects=False)
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"] == "/dashboard"


async def test_the_dashboard_is_not_in_the_api_schema(api: Api) -> None:
    paths = (await api.client.get("/schema/openapi.json")).json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/dashboard")]


async def test_every_module_the_page_imports_is_shipped(api: Api) -> None:
    """A browser that cannot load one module shows nothing: every relative import must resolve."""
    for module in ASSETS.rglob("*.js"):
        for target in re.findall(r'from "(\.[^"]+)"', module.read_text()):
            resolved = (module.parent / target).resolve()
            assert resolved.is_file(), f"{module.relative_to(ASSETS)} imports {target}, which is missing"
            url = "/dashboard/assets/" + resolved.relative_to(ASSETS.resolve()).as_posix()
            assert (await api.client.get(url)).status_code == 200, url


async def test_another_bundle_is_served_instead_of_ours_with_the_same_fallback(tmp_path: Path) -> None:
    """``controller.dashboard_dir``: upstream's prebuilt dashboard, laid out as ours (index.html, assets/)."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><script src="/dashboard/assets/index-B7.js">')
    (tmp_path / "assets" / "index-B7.js").write_text("console.log('upstream')")
    async for bundle in open_api(controller={"dashboard_dir": str(tmp_path)}):
        for path in ("/dashboard", "/dashboard/tasks", "/dashboard/skalds"):
            page = await bundle.client.get(path)
            assert page.status_code == 200 and "index-B7.js" in page.text
        script = await bundle.client.get("/dashboard/assets/index-B7.js")
        assert script.status_code == 200 and "upstream" in script.text
        assert (await bundle.client.get("/dashboard/assets/main.js")).status_code == 404  # not ours
