"""One Redis call bounded in time, with what the driver raises turned into BackendUnavailableError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from skalds.domain.errors import BackendUnavailableError


@asynccontextmanager
async def bounded_call(
    operation: str, where: str, timeout_s: float, *, deadline: bool = True
) -> AsyncIterator[None]:
    """``where`` is the server as logs may name it (never with its password). ``deadline=False`` when the
    call bounds itself by the same ``timeout_s`` (the heartbeat writer): its TimeoutError still reads as
    "no answer within timeout_s"."""
    try:
        async with asyncio.timeout(timeout_s if deadline else None):
            yield
    except TimeoutError as error:  # asyncio's deadline; redis's own TimeoutError is a RedisError
        raise BackendUnavailableError(
            "redis", f"{operation} on {where}: no answer within {timeout_s} s"
        ) from error
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise BackendUnavailableError("redis", f"{operation} on {where}: {error}") from error
    except RedisError as error:
        raise BackendUnavailableError("redis", f"{operation} refused by {where}: {error}") from error
