"""How handlers get what they need, in Litestar 3's explicit style (2.x infers the same and warns).

``services`` is a named dependency provided by the app from ``app.state``; path, query and body parameters
are marked where they are declared, so nothing is guessed from a parameter's name.
"""

from __future__ import annotations

from typing import TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency

from skalds.bootstrap import Services

Injected: TypeAlias = NamedDependency[Services]
"""``services: Injected`` in a handler: the process's services, started by the app's lifespan."""


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services
