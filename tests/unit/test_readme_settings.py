"""The README's configuration reference is what the settings model says, not what it said once."""

from __future__ import annotations

from pathlib import Path

from skalds.entrypoints.settings_reference import reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- settings-reference:start -->\n", "<!-- settings-reference:end -->"


def test_the_readme_lists_every_setting_with_its_names_and_default() -> None:
    text = README.read_text()
    shown = text[text.index(START) + len(START) : text.index(END)]
    assert shown == reference_markdown(), (
        "README.md's configuration reference is out of date: paste the output of "
        "`python -m skalds.entrypoints.settings_reference` between the settings-reference markers"
    )
