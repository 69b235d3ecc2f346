"""Edge task files: read in upstream's format, validated in full, never written."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from skalds.adapters.catalog import PydanticWorkerCatalog
from skalds.adapters.edge_yaml import EdgeTaskSpec, EdgeYamlError, first_task, load_edge_tasks


class Camera(BaseModel):
    rtsp_url: str = Field(alias="rtspUrl")
    fps: int = 10


@pytest.fixture
def catalog() -> PydanticWorkerCatalog:
    return PydanticWorkerCatalog({"CameraWorker": Camera, "Free": None})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tasks.yml"
    path.write_text(text)
    return path


def problems_of(path: Path, catalog: PydanticWorkerCatalog) -> list[str]:
    with pytest.raises(EdgeYamlError) as refused:
        load_edge_tasks(path, catalog)
    assert str(refused.value).count("\n") == len(refused.value.problems)  # the message lists every one
    return refused.value.problems


GOOD = """\
# comments stay: the file is never rewritten
TaskWorkers:
  cam-b:
    className: CameraWorker
    attachments: {rtspUrl: rtsp://b, fps: 5}
  cam-a:
    className: CameraWorker
    attachments: {rtsp_url: rtsp://a}
    isPersistent: false
  free-1:
    className: Free
Other: ignored
"""


def test_tasks_load_in_file_order_with_aliases_and_defaults(
    tmp_path: Path, catalog: PydanticWorkerCatalog
) -> None:
    path = write(tmp_path, GOOD)
    specs = load_edge_tasks(path, catalog)
    assert [s.id for s in specs] == ["cam-b", "cam-a", "free-1"]
    assert specs[0] == EdgeTaskSpec(
        id="cam-b",
        class_name="CameraWorker",
        attachments={"rtspUrl": "rtsp://b", "fps": 5},
        is_persistent=True,
    )
    assert dict(specs[1].attachments) == {"rtspUrl": "rtsp://a", "fps": 10}  # normalised by the catalog
    assert specs[1].is_persistent is False
    assert (dict(specs[2].attachments), specs[2].is_persistent) == ({}, True)


def test_the_file_is_byte_identical_after_loading(tmp_path: Path, catalog: PydanticWorkerCatalog) -> None:
    path = write(tmp_path, GOOD)
    before, modified = path.read_bytes(), path.stat().st_mtime_ns
    load_edge_tasks(path, catalog)
    first_task(path, catalog)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == (before, modified)


def test_every_problem_is_reported_at_once_naming_file_task_and_field(
    tmp_path: Path, catalog: PydanticWorkerCatalog
) -> None:
    path = write(
        tmp_path,
        "TaskWorkers:\n"
        "  cam-1: {className: CameraWorker, attachments: {rtspUrl: x, fps: fast}}\n"
        "  cam-2: {className: Nope}\n"
        "  cam-3: {attachments: {}}\n"
        "  cam-4: {className: Free, isPersistent: maybe, colour: red}\n"
        "  cam-5: {className: CameraWorker, attachments: [1]}\n"
        "  cam-6:\n"
        "  bad id: {className: Free}\n"
        "  a/b: {className: Free}\n"
        "  ok: {className: Free}\n",
    )
    problems = problems_of(path, catalog)
    expected = [
        "TaskWorkers.cam-1.attachments.fps: Input should be a valid integer",
        "TaskWorkers.cam-2.className: unknown worker class 'Nope'; known: CameraWorker, Free",
        "TaskWorkers.cam-3.className: required",
        "TaskWorkers.cam-4.isPersistent: expected true or false, got 'maybe'",
        "TaskWorkers.cam-4.colour: unknown key; allowed: className, attachments, isPersistent",
        "TaskWorkers.cam-5.attachments: expected a mapping, got list",
        "TaskWorkers.cam-6: expected a mapping",
        "TaskWorkers.bad id: invalid task id 'bad id'",
        "TaskWorkers.a/b: invalid task id 'a/b'",
    ]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) == len(expected)
    assert all(p.startswith(f"{path}: TaskWorkers.") for p in problems)


def test_several_bad_attachments_of_one_task_are_reported_one_by_one(
    tmp_path: Path, catalog: PydanticWorkerCatalog
) -> None:
    path = write(tmp_path, "TaskWorkers:\n  cam-1: {className: CameraWorker, attachments: {fps: fast}}\n")
    assert problems_of(path, catalog) == [
        f"{path}: TaskWorkers.cam-1.attachments.rtspUrl: Field required",
        f"{path}: TaskWorkers.cam-1.attachments.fps: "
        "Input should be a valid integer, unable to parse string as an integer",
    ]


def test_task_ids_must_be_strings(tmp_path: Path, catalog: PydanticWorkerCatalog) -> None:
    problems = problems_of(write(tmp_path, "TaskWorkers:\n  42: {className: Free}\n"), catalog)
    assert problems == [f"{tmp_path / 'tasks.yml'}: TaskWorkers.42: invalid task id 42; "
                        "use a non-empty string without spaces or '/'"]  # fmt: skip


def test_a_catalog_that_knows_no_classes_accepts_any_class_unchecked(tmp_path: Path) -> None:
    path = write(tmp_path, "TaskWorkers:\n  t1: {className: Anything, attachments: {x: 1}}\n")
    [spec] = load_edge_tasks(path, PydanticWorkerCatalog())
    assert (spec.class_name, dict(spec.attachments)) == ("Anything", {"x": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TaskWorkers: [1, 2]\n", "TaskWorkers: expected a mapping of task id -> task, got list"),
        ("TaskWorkers: {a: [\n", "invalid YAML: line 2, column 1"),
        ("- 1\n", "expected a mapping with a 'TaskWorkers' key at the top, got a list"),
        ("", "got an empty file"),
        ("taskWorkers: {}\n", "TaskWorkers: missing (top-level keys found: taskWorkers)"),
    ],
)
def test_a_malformed_file_is_refused_naming_it(
    tmp_path: Path, catalog: PydanticWorkerCatalog, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    [problem] = problems_of(path, catalog)
    assert problem.startswith(f"{path}: ")
    assert expected in problem


def test_a_missing_or_undecodable_file_is_refused_naming_it(
    tmp_path: Path, catalog: PydanticWorkerCatalog
) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(EdgeYamlError, match=f"{missing}: cannot read: No such file"):
        load_edge_tasks(missing, catalog)
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"TaskWorkers: \xff\xfe\n")
    with pytest.raises(EdgeYamlError, match=f"{binary}: "):
        load_edge_tasks(binary, catalog)


@pytest.mark.parametrize("text", ["TaskWorkers: {}\n", "TaskWorkers:\n"])
def test_empty_task_workers_is_no_task(tmp_path: Path, catalog: PydanticWorkerCatalog, text: str) -> None:
    path = write(tmp_path, text)
    assert load_edge_tasks(str(path), catalog) == []
    with pytest.raises(EdgeYamlError, match="has no task"):
        first_task(path, catalog)


def test_first_task_is_the_first_entry_of_the_file(tmp_path: Path, catalog: PydanticWorkerCatalog) -> None:
    spec = first_task(write(tmp_path, GOOD), catalog)
    assert (spec.id, spec.attachments["rtspUrl"]) == ("cam-b", "rtsp://b")
