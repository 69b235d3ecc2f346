// One row of the tasks table, and how a frame changes the task it shows. Rows exist only for the tasks of
// the current page; frames for any other task never reach the DOM.

import {
  TERMINAL,
  ago,
  h,
  link,
  progressBar,
  scaleOf,
  replace,
  setAgo,
  setProgress,
  statusBadge,
  taskPath,
} from "../dom.js";

export const COLUMNS = ["Task", "Class", "Status", "Progress", "Executor", "Attempt", "Updated"];

/** ``{tr, cells, task}``: the row, the cells frames change, and the row's own copy of the task. */
export function taskRow(task) {
  const cells = {
    status: h("td"),
    progress: progressBar(task.progress, scaleOf(task)),
    executor: h("td", { class: "mono" }),
    attempt: h("td", { class: "num" }),
    updated: ago(task.updateDateTime),
  };
  const tr = h(
    "tr",
    { "data-task": task.id },
    h("td", {}, link(taskPath(task.id), task.id, { class: "mono" })),
    h("td", {}, task.className),
    cells.status,
    h("td", {}, cells.progress),
    cells.executor,
    cells.attempt,
    h("td", {}, cells.updated),
  );
  return { tr, cells, task: { ...task } };
}

/** Draw the row's task; one that no longer matches the status filter stays, dimmed, until the next load. */
export function paintRow({ tr, cells, task }, statusFilter) {
  const asked = task.desiredState && task.desiredState !== "run" && !TERMINAL.has(task.lifecycleStatus);
  const note = asked ? h("span", { class: "muted small" }, ` → ${task.desiredState}`) : null;
  replace(cells.status, statusBadge(task.lifecycleStatus), note);
  tr.classList.toggle("filtered-out", Boolean(statusFilter) && task.lifecycleStatus !== statusFilter);
  setProgress(cells.progress, task.progress, scaleOf(task));
  const executor = task.executor ? link("/dashboard/skalds", task.executor) : null;
  replace(cells.executor, executor || h("span", { class: "muted" }, "unassigned"));
  cells.attempt.textContent = `${task.attempt}/${task.maxAttempts}`;
  setAgo(cells.updated, task.updateDateTime);
}

/** Apply a frame to a task; false when the frame is older than what we hold (by version). */
export function mergeFrame(task, frame) {
  const d = frame.data || {};
  if (frame.type === "task_status") {
    if (d.version < task.version) return false;
    Object.assign(task, { version: d.version, desiredState: d.desiredState });
    if (d.executor) task.executor = d.executor;
    if (d.change === "TaskRetried" || d.change === "TaskRequeued") task.progress = null;
  }
  if (d.lifecycleStatus) task.lifecycleStatus = d.lifecycleStatus;
  if (frame.type === "task_heartbeat" && d.progress !== undefined) task.progress = d.progress;
  if (frame.type === "task_heartbeat" && d.progressTotal !== undefined) {
    Object.assign(task, { progressTotal: d.progressTotal, progressUnit: d.progressUnit });
  }
  task.updateDateTime = frame.timestamp;
  return true;
}
