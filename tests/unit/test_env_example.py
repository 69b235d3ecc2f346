"""``.env.example`` only names settings Skalds accepts, commented-out lines included."""

from __future__ import annotations

import re
from pathlib import Path

from skalds.config import Backend, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_variable_in_the_env_example_is_a_valid_setting() -> None:
    variables = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        found = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if found:
            variables[found.group(1)] = found.group(2) or "x"
    assert len(variables) > 20
    settings = load_settings(None, variables)  # raises SettingsError naming any unknown or bad one
    assert settings.backends.event_bus is Backend.KAFKA
