"""What an upstream client asks in upstream's own form: a ``task.assign``, ``task.cancel`` or
``task.update.attachment`` TaskEvent naming task ids (``taskIds`` or ``task_ids``) with no recipient.

Upstream's nodes obeyed such messages directly. Ours obey only commands the control plane addressed to them
(versioned, one node each), so an upstream-form message is a request to the control plane instead: assign
means "dispatch these tasks now" (a task whose document names an ``executor`` waits for that node), cancel
and update go through the task service like the API's. docs/upstream.md has the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class UpstreamRequestKind(StrEnum):
    ASSIGN = "assign"
    CANCEL = "cancel"
    UPDATE_ATTACHMENTS = "update_attachments"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamRequest:
    kind: UpstreamRequestKind
    task_ids: tuple[str, ...]
    at: int | None  # when the client says it sent it (epoch ms), if it does
