"""Every setting, its environment names (ours, the short aliases, upstream's) and its default, as a
Markdown table: the README's configuration reference is this output (a unit test keeps them equal)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import BaseModel, SecretStr

from skalds.config import Settings, environment_names


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
        return "—"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value, default=str)}`"


def reference_markdown() -> str:
    names = environment_names()
    defaults = Settings()
    lines = ["| setting | environment | default |", "|---|---|---|"]
    for section in Settings.model_fields:
        model: BaseModel = getattr(defaults, section)
        for field in type(model).model_fields:
            env = "<br>".join(f"`{name}`" for name in names[(section, field)])
            lines.append(f"| `{section}.{field}` | {env} | {_shown(getattr(model, field))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
