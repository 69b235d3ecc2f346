"""The one place errors become HTTP answers: a backend that is down is a 503 naming it, never a 500."""

from __future__ import annotations

from typing import Any

from skalds.domain.errors import BackendUnavailableError
from skalds.entrypoints.api.errors import skalds_error

NO_REQUEST: Any = None  # the mapping does not read the request


def test_a_backend_that_is_down_is_a_503_naming_it() -> None:
    answer = skalds_error(NO_REQUEST, BackendUnavailableError("mongo", "mongodb://db:27017: timed out"))
    assert answer.status_code == 503
    assert answer.content == {
        "error": "BACKEND_UNAVAILABLE",
        "message": "mongo is unavailable: mongodb://db:27017: timed out",
        "status_code": 503,
        "backend": "mongo",
    }
