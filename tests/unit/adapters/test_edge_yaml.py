"""Edge task files: read in upstream's format, validated in full, never written."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from skalds.adapters.catalog import PydanticWorkerCatalog
from skalds.adapters.edge_yaml import EdgeYamlError, first_task, load_edge_tasks


class Camera(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    rtsp_url: str = Field(alias="rtspUrl")
    fps: int = 10


@pytest.fixture
def catalog() -> PydanticWorkerCatalog:
    found = PydanticWorkerCatalog({})
    found.register("CameraWorker", Camera)
    found.register("Free", None)
    return found


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tasks.yml"
    path.write_text(text)
    return path


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
Other: ignored
"""


def test_tasks_load_in_file_order_with_aliases_and_defaults(
    tmp_path: Path, catalog: PydanticWorkerCatalog
) -> None:
    path = write(tmp_path, GOOD)
    before = path.read_bytes()
    specs = load_edge_tasks(path, catalog)
    assert [s.id for s in specs] == ["cam-b", "cam-a"]
    assert dict(specs[1].attachments) == {"rtspUrl": "rtsp://a", "fps": 10}
    assert (specs[0].is_persistent, specs[1].is_persistent) == (True, False)
    assert path.read_bytes() == before
    assert first_task(path, catalog).id == "cam-b"


def test_every_problem_is_reported_at_once_naming_task_and_field(
    tmp_path: Path, catalog: PydanticWorkerCatalog
) -> None:
    path = write(
        tmp_path,
        "TaskWorkers:\n"
        "  cam-1: {className: CameraWorker, attachments: {rtspUrl: x, fps: fast}}\n"
        "  cam-2: {className: Nope}\n"
        "  cam-3: {attachments: {}}\n"
        "  cam-4: {className: Free, isPersistent: maybe, colour: red}\n",
    )
    with pytest.raises(EdgeYamlError) as refused:
        load_edge_tasks(path, catalog)
    problems = refused.value.problems
    assert any("TaskWorkers.cam-1.attachments.fps" in p for p in problems)
    assert any("TaskWorkers.cam-2.className: unknown worker class 'Nope'" in p for p in problems)
    assert any("TaskWorkers.cam-3.className: required" in p for p in problems)
    assert any("TaskWorkers.cam-4.isPersistent" in p for p in problems)
    assert any("TaskWorkers.cam-4.colour: unknown key" in p for p in problems)
    assert all(p.startswith(str(path)) for p in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TaskWorkers: [1, 2]\n", "expected a mapping"),
        ("TaskWorkers: {a: [\n", "invalid YAML"),
        ("- 1\n", "expected"),
    ],
)
def test_a_malformed_file_is_refused_naming_it(
    tmp_path: Path, catalog: PydanticWorkerCatalog, text: str, expected: str
) -> None:
    with pytest.raises(EdgeYamlError, match=expected):
        load_edge_tasks(write(tmp_path, text), catalog)


def test_a_missing_file_and_an_empty_one(tmp_path: Path, catalog: PydanticWorkerCatalog) -> None:
    with pytest.raises(EdgeYamlError, match="cannot read"):
        load_edge_tasks(tmp_path / "missing.yml", catalog)
    assert load_edge_tasks(write(tmp_path, "TaskWorkers: {}\n"), catalog) == []
    with pytest.raises(EdgeYamlError, match="no task"):
        first_task(write(tmp_path, "TaskWorkers:\n"), catalog)
