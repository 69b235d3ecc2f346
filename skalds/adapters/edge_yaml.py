"""Upstream's edge YAML file (``TaskWorkers: {<id>: {className, attachments, isPersistent}}``), read and
validated in full before anything runs. Every problem is reported at once, naming the file, the task and
the field. The file is only ever read: upstream rewrote it on every start and lost its comments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml

from skalds.domain.errors import SkaldsError, ValidationError
from skalds.domain.ports import WorkerCatalog

TASK_KEYS = ("className", "attachments", "isPersistent")
# The catalog folds several attachment problems into one ValidationError ("2 problems: attachments.a: ...;
# attachments.b: ..."); these split it again so that each field is reported on its own line.
_FOLDED = re.compile(r"\d+ problems: ")
_NEXT_FIELD = re.compile(r"; (?=attachments[.:])")


class EdgeYamlError(SkaldsError):
    """The edge file cannot be used; ``problems`` lists every reason, each naming the file, task and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        super().__init__(f"invalid edge task file ({count}):\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class EdgeTaskSpec:
    """One ``TaskWorkers`` entry after validation: attachments are the catalog's normalised form."""

    id: str
    class_name: str
    attachments: Mapping[str, Any]
    is_persistent: bool


def load_edge_tasks(path: str | os.PathLike[str], catalog: WorkerCatalog) -> list[EdgeTaskSpec]:
    """Every task in file order, or EdgeYamlError listing all problems; the file is never written."""
    name = os.fspath(path)
    document = _read(name)
    if not isinstance(document, Mapping):
        got = "an empty file" if document is None else f"a {type(document).__name__}"
        raise EdgeYamlError([f"{name}: expected a mapping with a 'TaskWorkers' key at the top, got {got}"])
    if "TaskWorkers" not in document:
        keys = ", ".join(map(str, document)) or "none"
        raise EdgeYamlError([f"{name}: TaskWorkers: missing (top-level keys found: {keys})"])
    entries = document["TaskWorkers"]
    if entries is None:
        return []
    if not isinstance(entries, Mapping):
        raise EdgeYamlError(
            [f"{name}: TaskWorkers: expected a mapping of task id -> task, got {type(entries).__name__}"]
        )
    problems: list[str] = []
    specs: list[EdgeTaskSpec] = []
    known = catalog.class_names()
    for task_id, entry in entries.items():
        found = _task(task_id, entry, known=known, catalog=catalog, where=f"{name}: TaskWorkers.{task_id}")
        if isinstance(found, EdgeTaskSpec):
            specs.append(found)
        else:
            problems.extend(found)
    if problems:
        raise EdgeYamlError(problems)
    return specs


def first_task(path: str | os.PathLike[str], catalog: WorkerCatalog) -> EdgeTaskSpec:
    """The one task a single_process node runs: the file's first entry."""
    specs = load_edge_tasks(path, catalog)
    if not specs:
        raise EdgeYamlError([f"{os.fspath(path)}: TaskWorkers: has no task; single_process needs one"])
    return specs[0]


def _read(name: str) -> Any:
    try:
        with open(name, encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except OSError as error:
        raise EdgeYamlError([f"{name}: cannot read: {error.strerror or error}"]) from None
    except UnicodeDecodeError as error:
        raise EdgeYamlError([f"{name}: cannot read: not UTF-8 text ({error.reason})"]) from None
    except yaml.YAMLError as error:
        raise EdgeYamlError([f"{name}: invalid YAML: {_describe(error)}"]) from None


def _describe(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        context = f" ({error.context})" if error.context else ""
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}{context}"
    return str(error)


def _task(
    task_id: Any, entry: Any, *, known: frozenset[str], catalog: WorkerCatalog, where: str
) -> EdgeTaskSpec | list[str]:
    """The validated task, or every problem with it."""
    problems: list[str] = []
    if not isinstance(task_id, str) or not task_id or any(c.isspace() or c == "/" for c in task_id):
        problems.append(f"{where}: invalid task id {task_id!r}; use a non-empty string without spaces or '/'")
    if not isinstance(entry, Mapping):
        got = "nothing" if entry is None else f"a {type(entry).__name__}"
        problems.append(f"{where}: expected a mapping with className (and optionally attachments), got {got}")
        return problems
    problems.extend(
        f"{where}.{key}: unknown key; allowed: {', '.join(TASK_KEYS)}"
        for key in entry
        if key not in TASK_KEYS
    )
    class_name: Any = entry.get("className")
    if class_name is None:
        choices = f" ({', '.join(sorted(known))})" if known else ""
        problems.append(f"{where}.className: required, the name of a registered worker class{choices}")
    elif not isinstance(class_name, str) or not class_name:
        problems.append(f"{where}.className: expected a worker class name, got {class_name!r}")
    elif known and class_name not in known:
        problems.append(
            f"{where}.className: unknown worker class {class_name!r}; known: {', '.join(sorted(known))}"
        )
    attachments: Any = entry.get("attachments")
    if attachments is None:
        attachments = {}
    if not isinstance(attachments, Mapping):
        problems.append(f"{where}.attachments: expected a mapping, got {type(attachments).__name__}")
    elif bad_keys := [key for key in attachments if not isinstance(key, str)]:
        problems.append(f"{where}.attachments: keys must be strings, got {', '.join(map(repr, bad_keys))}")
    elif isinstance(class_name, str) and class_name in known:
        try:
            attachments = catalog.validate_attachments(class_name, attachments)
        except ValidationError as error:
            problems.extend(f"{where}.{problem}" for problem in _attachment_problems(error))
    persistent = entry.get("isPersistent", True)
    if not isinstance(persistent, bool):
        problems.append(f"{where}.isPersistent: expected true or false, got {persistent!r}")
    if problems:
        return problems
    return EdgeTaskSpec(
        id=task_id,
        class_name=class_name,
        attachments=MappingProxyType(dict(attachments)),
        is_persistent=persistent,
    )


def _attachment_problems(error: ValidationError) -> list[str]:
    """``field: reason`` per problem, unfolding the catalog's one-error summary of several."""
    folded = _FOLDED.match(error.reason)
    if folded is None:
        return [f"{error.field}: {error.reason}"]
    return _NEXT_FIELD.split(error.reason[folded.end() :])
