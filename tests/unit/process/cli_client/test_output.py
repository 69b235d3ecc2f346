"""The client's output without a server: tables in 100 columns, progress, SSE frames, the live line."""

from __future__ import annotations

import io
from typing import Any

from skalds.entrypoints.client.render import bar, progress_text, tasks_table
from skalds.entrypoints.client.sse import Frame, read_frames
from skalds.entrypoints.client.watch import PeopleView


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def a_task(**fields: Any) -> dict[str, Any]:
    return {
        "id": "4f9c2a61-0b7e-4c1d-9a53-2e8f1d6b7c90",
        "className": "VideoInferenceWorkerWithAVeryLongName",
        "lifecycleStatus": "Assigning",
        "executor": "gpu-node-eu-west-1a-0042.cluster.internal",
        "progress": 42.4,
        "updateDateTime": 1_700_000_000_000,
        **fields,
    }


def test_a_wide_task_table_fits_in_100_columns_and_keeps_the_whole_id() -> None:
    lines = tasks_table([a_task(), a_task(id="short", progress=None, executor=None)]).splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[1].startswith("4f9c2a61-0b7e-4c1d-9a53-2e8f1d6b7c90  ")
    assert "Assigning" in lines[1]
    assert "42%" in lines[1]
    assert "…" in lines[1]  # the class and executor gave way
    assert lines[2].split()[0] == "short"


def test_progress_is_a_percentage_from_0_to_100_and_a_plain_number_otherwise() -> None:
    assert (progress_text(None), progress_text(99.6), progress_text(1234)) == ("-", "100%", "1234")
    assert bar(50, cells=10) == "[#####.....]  50%"
    assert bar(1234, cells=10) == "1234"


def test_sse_frames_skip_comments_greeting_has_no_id_and_a_cut_frame_is_dropped() -> None:
    lines = [
        "retry: 3000",
        'data: {"type": "connection"}',
        "",
        ": keep-alive",
        "id: 7",
        'data: {"type":"task_status",',
        'data: "taskId":"t"}',
        "",
        "id: 8",
        'data: {"type":"task_heartbeat"}',
    ]
    assert list(read_frames(lines)) == [
        Frame(id=None, data={"type": "connection"}),
        Frame(id="7", data={"type": "task_status", "taskId": "t"}),
    ]


def test_on_a_terminal_progress_is_one_redrawn_line_and_status_changes_stay() -> None:
    out = Terminal()
    view = PeopleView(out, "t1", live=True)
    view.task({"id": "t1", "lifecycleStatus": "Running", "desiredState": "run", "executor": "n1"})
    for progress in (10, 20, 20):
        view.frame(Frame(id="1", data={"type": "task_heartbeat", "data": {"progress": progress}}))
    done = {"lifecycleStatus": "Finished", "previousStatus": "Running", "desiredState": "run"}
    view.frame(Frame(id="2", data={"type": "task_status", "timestamp": 1_700_000_000_000, "data": done}))
    view.close()
    text = out.getvalue()
    assert text.count("\r\x1b[Kt1  Running  [") == 2  # 10% and 20%; the repeated 20% is not redrawn
    kept = [line.rsplit("\r\x1b[K", 1)[-1] for line in text.split("\n") if line]
    assert [line.split("  ", 1)[1] for line in kept] == ["t1  Running on n1", "t1  Finished"]
    assert text.endswith("Finished\n")


def test_progress_with_a_total_reads_as_a_count_of_it_and_its_share() -> None:
    assert progress_text(37, 120, "frames") == "37 / 120 frames (31%)"
    assert progress_text(5, 8) == "5 / 8 (62%)"
    assert bar(30, 120, "s", cells=4) == "[#...] 30 / 120 s (25%)"
    assert progress_text(37, 0, "frames") == "37%"  # a total that is not one is ignored: as without
