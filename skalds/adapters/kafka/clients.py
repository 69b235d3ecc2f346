"""librdkafka settings for each client the bus opens.

Precedence: our defaults, then the user's ``client_config`` (``security.protocol``, ``sasl.*``, ``ssl.*``, or
any tuning), then the few settings the bus's guarantees rest on, which nobody may override (manual commits,
the group id, the idempotent producer's acknowledgements).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from confluent_kafka import KafkaError

Config = dict[str, Any]
_CONNECTION_NOISE = frozenset({KafkaError._TRANSPORT, KafkaError._RESOLVE})  # one per broker and retry


class _LibrdkafkaLog:
    """librdkafka's own log lines, into Python logging. Its line for each failed connection attempt
    (facility FAIL: retried by librdkafka, summed up by the error callback) goes to debug."""

    def __init__(self) -> None:
        self._log = logging.getLogger("skalds.adapters.kafka.librdkafka")

    def log(self, level: int, message: str, *args: object) -> None:
        self._log.log(logging.DEBUG if args[:1] == ("FAIL",) else level, message, *args)


def log_client_error(log: logging.Logger, client: str, error: KafkaError) -> None:
    """A dropped connection is retried by librdkafka and summed up by "all brokers are down": debug only."""
    level = logging.DEBUG if error.code() in _CONNECTION_NOISE else logging.WARNING
    log.log(level, "kafka %s: %s", client, error.str())


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    bootstrap_servers: str
    client_id: str
    client_config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    delivery_timeout_ms: int = 10_000

    def _with(self, defaults: Config, required: Config) -> Config:
        return {**defaults, **self.client_config, **required}

    def _defaults(self) -> Config:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "socket.nagle.disable": True,  # small messages, latency first
            "reconnect.backoff.ms": 50,  # a restarted broker is found again within a second
            "reconnect.backoff.max.ms": 1_000,
        }

    def admin(self) -> Config:
        return self._with(self._defaults(), {})

    def _logged(self, config: Config) -> Config:
        """librdkafka's log lines go through Python logging (served by the client's poll), not stderr."""
        return {"logger": _LibrdkafkaLog(), **config}

    def producer(self) -> Config:
        """Publish returns once the broker has the message: acks from every in-sync replica, no batching
        delay, idempotence so retries after a reconnect never duplicate, and a bounded wait when down."""
        defaults = {
            **self._defaults(),
            "linger.ms": 0,
            "delivery.timeout.ms": self.delivery_timeout_ms,
            "request.timeout.ms": min(5_000, self.delivery_timeout_ms),
        }
        return self._logged(self._with(defaults, {"acks": "all", "enable.idempotence": True}))

    def command_consumer(self, group_id: str) -> Config:
        """A node's stable group, read from the start the first time, committed by hand after handling.

        A dynamic member: closing leaves the group, so the node's next subscription joins at once; after a
        crash the next one waits out the short session timeout of its former self. (Static membership would
        skip that wait, but a broker restart then fences the member, a fatal error in librdkafka.)"""
        defaults = {**self._defaults(), "session.timeout.ms": 10_000}
        required = {
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
        return self._logged(self._with(defaults, required))

    def event_consumer(self, group_id: str) -> Config:
        """Assigned partitions, never committed: every bus reads every event from where it started."""
        required = {"group.id": group_id, "enable.auto.commit": False, "enable.auto.offset.store": False}
        return self._logged(self._with(self._defaults(), required))
