"""Upstream's edge YAML file (``TaskWorkers: {<id>: {className, attachments, isPersistent}}``), read and
validated in full before anything runs. Every problem is reported at once, naming the file, the task and
the field. The file is only ever read: upstream rewrote it on every start and lost its comments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from skalds.domain.errors import SkaldsError, ValidationError
from skalds.domain.ports import WorkerCatalog

TASK_KEYS = ("className", "attachments", "isPersistent")


class EdgeYamlError(SkaldsError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid edge task file:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeTaskSpec:
    id: str
    class_name: str
    attachments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    is_persistent: bool = True


def load_edge_tasks(path: str | os.PathLike[str], catalog: WorkerCatalog) -> list[EdgeTaskSpec]:
    name = str(path)
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise EdgeYamlError([f"{name}: cannot read: {error.strerror}"]) from None
    except yaml.YAMLError as error:
        raise EdgeYamlError([f"{name}: invalid YAML: {error}"]) from None
    if not isinstance(document, Mapping) or not isinstance(document.get("TaskWorkers", {}) or {}, Mapping):
        raise EdgeYamlError([f"{name}: expected a mapping with a 'TaskWorkers' mapping of task id -> task"])
    entries: Mapping[Any, Any] = document.get("TaskWorkers") or {}
    problems: list[str] = []
    specs: list[EdgeTaskSpec] = []
    known = catalog.class_names()
    for task_id, entry in entries.items():
        where = f"{name}: TaskWorkers.{task_id}"
        found = _task(task_id, entry, known=known, catalog=catalog, where=where, problems=problems)
        if found is not None:
            specs.append(found)
    if problems:
        raise EdgeYamlError(problems)
    return specs


def first_task(path: str | os.PathLike[str], catalog: WorkerCatalog) -> EdgeTaskSpec:
    specs = load_edge_tasks(path, catalog)
    if not specs:
        raise EdgeYamlError([f"{path}: TaskWorkers has no task"])
    return specs[0]


def _task(
    task_id: Any,
    entry: Any,
    *,
    known: frozenset[str],
    catalog: WorkerCatalog,
    where: str,
    problems: list[str],
) -> EdgeTaskSpec | None:
    before = len(problems)
    if not isinstance(task_id, str) or not task_id.strip() or any(c.isspace() or c == "/" for c in task_id):
        problems.append(f"{where}: the task id must be a non-empty string without spaces or '/'")
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: expected a mapping with className and attachments")
        return None
    for key in entry:
        if key not in TASK_KEYS:
            problems.append(f"{where}.{key}: unknown key; allowed: {', '.join(TASK_KEYS)}")
    class_name = entry.get("className")
    if not isinstance(class_name, str) or not class_name:
        problems.append(f"{where}.className: required, the name of a registered worker class")
    elif known and class_name not in known:
        problems.append(
            f"{where}.className: unknown worker class {class_name!r}; known: {', '.join(sorted(known))}"
        )
    attachments = entry.get("attachments") or {}
    if not isinstance(attachments, Mapping):
        problems.append(f"{where}.attachments: expected a mapping, got {type(attachments).__name__}")
    elif isinstance(class_name, str) and class_name in known:
        try:
            attachments = catalog.validate_attachments(class_name, attachments)
        except ValidationError as error:
            problems.append(f"{where}.{error.field}: {error.reason}")
    persistent = entry.get("isPersistent", True)
    if not isinstance(persistent, bool):
        problems.append(f"{where}.isPersistent: expected true or false, got {persistent!r}")
    if len(problems) > before:
        return None
    return EdgeTaskSpec(
        id=task_id,
        class_name=str(class_name),
        attachments=MappingProxyType(dict(attachments)),
        is_persistent=persistent,
    )
