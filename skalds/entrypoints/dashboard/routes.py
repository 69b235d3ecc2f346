"""The live dashboard: static HTML, CSS and JavaScript modules shipped inside the package, no build step.

``/dashboard`` and every ``/dashboard/*`` path that is not an asset answer ``index.html`` (the page routes
on the client, as upstream's did); assets live under ``/dashboard/assets/``. ``/`` redirects here. None of
it is in the OpenAPI schema: it is a client of the API, not part of it.
"""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import File, Redirect
from litestar.static_files import create_static_files_router

STATIC = Path(__file__).parent / "static"
INDEX = STATIC / "index.html"
ASSETS = STATIC / "assets"
REVALIDATE = CacheControlHeader(no_cache=True)
"""Asset names carry no content hash, so browsers revalidate (cheap: ETag / Last-Modified) on every load
and an upgraded package is never shown with yesterday's JavaScript."""


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect(path="/dashboard")


@get(["/dashboard", "/dashboard/{page:path}"], include_in_schema=False, cache_control=REVALIDATE)
async def dashboard_page() -> File:
    """The single page for every client route (``/dashboard/tasks/<id>`` reloads to the same page)."""
    return File(INDEX, media_type=MediaType.HTML, content_disposition_type="inline")


def dashboard_router() -> Router:
    """The dashboard's routes, for ``create_app``'s ``route_handlers``."""
    assets = create_static_files_router(
        path="/dashboard/assets",
        directories=[ASSETS],
        name="dashboard-assets",
        cache_control=REVALIDATE,
        include_in_schema=False,
    )
    return Router(path="/", route_handlers=[root, dashboard_page, assets], include_in_schema=False)
