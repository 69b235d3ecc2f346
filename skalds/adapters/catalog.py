"""Worker classes and the pydantic models their authors write for attachments.

Attachments are checked where tasks are created, so a bad field is refused by name before any node runs it.
A key the model does not have is refused too (a model that allows extra keys excepted): pydantic would drop
it without a word, and a typo in a hot update would be "accepted" and do nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from skalds.domain.errors import ValidationError
from skalds.domain.ports import WorkerCatalog


def _populate_by_name(model: type[BaseModel]) -> type[BaseModel]:
    """Before pydantic 2.11, accepting field names as well as aliases needs ``populate_by_name``."""
    config: ConfigDict = {**model.model_config, "populate_by_name": True}
    return type(model.__name__, (model,), {"model_config": config, "__module__": model.__module__})


class PydanticWorkerCatalog(WorkerCatalog):
    """Known worker classes; a class without a model (None) is known but its attachments pass unchecked."""

    def __init__(self, models: Mapping[str, type[BaseModel] | None] | None = None) -> None:
        self._models: dict[str, type[BaseModel] | None] = {}
        self._by_name = "by_name" in inspect.signature(BaseModel.model_validate).parameters  # pydantic 2.11+
        for class_name, model in (models or {}).items():
            self.register(class_name, model)

    def register(self, class_name: str, model: type[BaseModel] | None = None) -> None:
        if model is not None and not self._by_name:
            model = _populate_by_name(model)
        self._models[class_name] = model

    def class_names(self) -> frozenset[str]:
        return frozenset(self._models)

    def validate_attachments(self, class_name: str, attachments: Mapping[str, Any]) -> Mapping[str, Any]:
        if class_name not in self._models:
            known = ", ".join(sorted(self._models)) or "none"
            raise ValidationError("className", f"unknown worker class {class_name!r}; known: {known}")
        model = self._models[class_name]
        if model is None:
            return dict(attachments)
        _refuse_unknown_keys(model, attachments)
        try:
            if self._by_name:
                validated = model.model_validate(attachments, by_alias=True, by_name=True)
            else:
                validated = model.model_validate(attachments)
        except pydantic.ValidationError as exc:
            problems = [(".".join(["attachments", *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
            field, reason = problems[0]
            if len(problems) > 1:
                reason = f"{len(problems)} problems: " + "; ".join(f"{f}: {msg}" for f, msg in problems)
            raise ValidationError(field, reason) from None
        return validated.model_dump(mode="json", by_alias=True)

    def merged_attachments(
        self, class_name: str, current: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """``current`` with ``changes`` laid over it key by key (a key by field name or by alias is the
        same key), validated as a whole. A class this catalog does not know (a controller with no worker
        classes of its own) is merged as plain keys and left to the caller's rules."""
        if class_name not in self._models:
            return {**current, **changes}
        model = self._models[class_name]
        if model is None:
            return self.validate_attachments(class_name, {**current, **changes})
        _refuse_unknown_keys(model, changes)
        name_of = _names_of(model)
        merged = {name_of.get(k, k): v for k, v in current.items()}
        merged.update({name_of.get(k, k): v for k, v in changes.items()})
        aliased = {
            model.model_fields[n].alias or n if n in model.model_fields else n: v for n, v in merged.items()
        }
        return self.validate_attachments(class_name, aliased)


def _names_of(model: type[BaseModel]) -> dict[str, str]:
    """Every key the model accepts at the top level -> its field name."""
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
        if isinstance(info.validation_alias, str):
            names[info.validation_alias] = name
    return names


def _refuse_unknown_keys(model: type[BaseModel], attachments: Mapping[str, Any]) -> None:
    if model.model_config.get("extra") == "allow":
        return
    known = _names_of(model)
    unknown = sorted(str(key) for key in attachments if key not in known)
    if unknown:
        accepted = ", ".join(sorted(info.alias or name for name, info in model.model_fields.items()))
        raise ValidationError(
            f"attachments.{unknown[0]}",
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"{model.__name__} has: {accepted or 'no keys'}",
        )
