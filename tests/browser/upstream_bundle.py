"""Upstream's prebuilt dashboard, unmodified: the ``skalds/system_controller/static/dashboard/`` folder of
the ``skalds==0.3.8`` wheel, downloaded once (``pip download``) into the service cache ci/services.py uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.3.8"
PREFIX = "skalds/system_controller/static/dashboard/"


def cache_dir() -> Path:
    raw = os.environ.get("SKALDS_SERVICES_CACHE", "").strip()
    return Path(raw).expanduser().resolve() if raw else Path.home() / ".cache" / "skalds-services"


def upstream_bundle() -> Path:
    """The bundle's folder (``index.html`` and ``assets/``), fetched on first use."""
    folder = cache_dir() / f"upstream-dashboard-{VERSION}"
    if (folder / "index.html").is_file():
        return folder
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"skalds=={VERSION}", "--no-deps", "-q", "-d", scratch],
            check=True,
        )
        [wheel] = Path(scratch).glob("skalds-*.whl")
        unpacked = Path(scratch) / "bundle"
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith(PREFIX) and not member.endswith("/"):
                    target = unpacked / member.removeprefix(PREFIX)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(unpacked, folder)
    return folder
