"""The composition root: the only module that names concrete adapters.

Everything is built from explicit settings; nothing is created at import time.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from skalds.adapters.system import SystemClock, Uuid4IdGenerator
from skalds.config import Settings


class Container(containers.DeclarativeContainer):
    settings: providers.Dependency[Settings] = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid4IdGenerator)
    heartbeat_policy = providers.Singleton(lambda s: s.heartbeat.policy(), settings)
    retry_policy = providers.Singleton(lambda s: s.retry.policy(), settings)
    resource_thresholds = providers.Singleton(lambda s: s.dispatch.thresholds(), settings)
