"""The live dashboard: static HTML, CSS and JavaScript modules shipped inside the package, no build step.

``/dashboard`` and every ``/dashboard/*`` path that is not an asset answer ``index.html`` (the page routes
on the client, as upstream's did); assets live under ``/dashboard/assets/``. ``/`` redirects here. None of
it is in the OpenAPI schema: it is a client of the API, not part of it.

``controller.dashboard_dir`` serves another bundle laid out the same way instead of ours: upstream's prebuilt
dashboard (``skalds/system_controller/static/dashboard/`` of its wheel) works unmodified, so a team moving
from upstream can keep the page it knows (docs/upstream.md).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from litestar import MediaType, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import File, Redirect

STATIC = Path(__file__).parent / "static"
ASSETS = STATIC / "assets"  # ours
REVALIDATE = CacheControlHeader(no_cache=True)
"""Asset names carry no content hash, so browsers revalidate (cheap: ETag / Last-Modified) on every load
and an upgraded package is never shown with yesterday's JavaScript."""


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect(path="/dashboard")


def _page(index: Path) -> HTTPRouteHandler:
    @get(["/dashboard", "/dashboard/{page:path}"], include_in_schema=False, cache_control=REVALIDATE)
    async def dashboard_page() -> File:
        """The single page for every client route (``/dashboard/tasks/<id>`` reloads to the same page)."""
        return File(index, media_type=MediaType.HTML, content_disposition_type="inline")

    return dashboard_page


def _assets(folder: Path) -> HTTPRouteHandler:
    root = folder.resolve()

    @get("/dashboard/assets/{asset:path}", include_in_schema=False, cache_control=REVALIDATE)
    async def dashboard_asset(asset: FromPath[str]) -> File:
        """A file under the bundle's ``assets/``. Anything else (a NUL, ``..``, a folder, nothing there) is a
        404 naming only the asset asked for, never a path on this machine."""
        wanted = asset.lstrip("/")
        path = None if "\x00" in wanted else (root / wanted).resolve()
        if path is None or not path.is_relative_to(root) or not path.is_file():
            raise NotFoundException(f"no dashboard asset {wanted!r}")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return File(path, filename=path.name, media_type=media_type, content_disposition_type="inline")

    return dashboard_asset


def dashboard_router(bundle: Path | None = None) -> Router:
    """The dashboard's routes, for ``create_app``'s ``route_handlers``: ours, or the bundle in ``bundle``
    (a folder with ``index.html`` and ``assets/``, checked by the settings)."""
    folder = bundle or STATIC
    assets = _assets(folder / "assets")
    page = _page(folder / "index.html")
    return Router(path="/", route_handlers=[root, page, assets], include_in_schema=False)
