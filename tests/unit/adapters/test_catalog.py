"""Attachments are validated against the worker author's model and refused by field path."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from skalds.adapters.catalog import PydanticWorkerCatalog
from skalds.domain.errors import ValidationError


class Region(BaseModel):
    name: str
    max_items: int = Field(alias="maxItems", gt=0)


class CrawlAttachments(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    start_url: str
    regions: list[Region] = []
    retries: int = 0


def catalog() -> PydanticWorkerCatalog:
    return PydanticWorkerCatalog({"Crawler": CrawlAttachments, "Sleeper": None})


def test_valid_attachments_come_back_in_wire_form() -> None:
    result = catalog().validate_attachments(
        "Crawler", {"startUrl": "https://x", "regions": [{"name": "eu", "maxItems": "3"}]}
    )
    assert result == {"startUrl": "https://x", "regions": [{"name": "eu", "maxItems": 3}], "retries": 0}


def test_field_names_are_accepted_as_well_as_aliases() -> None:
    result = catalog().validate_attachments("Crawler", {"start_url": "https://x", "retries": 2})
    assert result["startUrl"] == "https://x"
    assert result["retries"] == 2


def test_an_error_names_the_nested_field_path() -> None:
    with pytest.raises(ValidationError) as caught:
        catalog().validate_attachments(
            "Crawler", {"startUrl": "https://x", "regions": [{"name": "eu", "maxItems": 0}]}
        )
    assert caught.value.field == "attachments.regions.0.maxItems"
    assert "greater than 0" in caught.value.reason


def test_several_errors_are_all_listed_and_the_first_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        catalog().validate_attachments("Crawler", {"retries": "many"})
    assert caught.value.field == "attachments.startUrl"
    assert "attachments.startUrl: Field required" in caught.value.reason
    assert "attachments.retries:" in caught.value.reason


def test_a_class_without_a_model_passes_attachments_through() -> None:
    assert catalog().validate_attachments("Sleeper", {"anything": [1, 2]}) == {"anything": [1, 2]}


def test_an_unknown_class_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        catalog().validate_attachments("Nope", {})
    assert caught.value.field == "className"
    assert caught.value.reason == "unknown worker class 'Nope'; known: Crawler, Sleeper"


def test_registered_classes_are_known() -> None:
    known = PydanticWorkerCatalog()
    assert known.class_names() == frozenset()
    known.register("Late", None)
    known.register("Crawler", CrawlAttachments)
    assert known.class_names() == frozenset({"Late", "Crawler"})
    assert known.validate_attachments("Crawler", {"startUrl": "u"})["startUrl"] == "u"


def test_a_key_the_model_does_not_have_is_refused_by_name() -> None:
    """pydantic would drop it silently: a typo in a hot update would be accepted and do nothing."""
    with pytest.raises(ValidationError) as caught:
        catalog().validate_attachments("Crawler", {"startUrl": "https://x", "retires": 3})
    assert caught.value.field == "attachments.retires"
    assert "retires" in caught.value.reason and "startUrl" in caught.value.reason


def test_a_model_that_allows_extra_keys_keeps_them() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        fps: int = 5

    assert PydanticWorkerCatalog({"Open": Open}).validate_attachments("Open", {"note": "x"}) == {
        "fps": 5,
        "note": "x",
    }


def test_a_merge_lays_changes_over_the_current_key_by_key_whatever_name_a_key_is_given_by() -> None:
    current = catalog().validate_attachments("Crawler", {"startUrl": "https://x", "retries": 2})
    merged = catalog().merged_attachments("Crawler", current, {"start_url": "https://y"})
    assert merged == {"startUrl": "https://y", "regions": [], "retries": 2}
    with pytest.raises(ValidationError) as caught:
        catalog().merged_attachments("Crawler", current, {"retrys": 1})
    assert caught.value.field == "attachments.retrys"


def test_a_class_the_catalog_does_not_know_is_merged_as_plain_keys() -> None:
    """A controller with no worker classes of its own still takes a PATCH: the keys are laid over the
    stored ones and the catalog's usual rule for unknown classes applies afterwards."""
    merged = PydanticWorkerCatalog().merged_attachments("Elsewhere", {"a": 1, "b": 2}, {"b": 3})
    assert merged == {"a": 1, "b": 3}
