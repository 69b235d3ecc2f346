// The task page's past, from what the controller keeps (/api/tasks/{id}/timeline): every lifecycle change
// (newest first, a failure with its error), the attempts it made (node, start, end, outcome, error) and its
// progress over time. Frames add a change or a progress point at once; a change also re-reads the timeline
// a moment later (the controller writes it in batches), which rebuilds the attempts from the server's data.

import { changeWords } from "../activity.js";
import { api } from "../api.js";
import { progressLine } from "../charts.js";
import { clock, h, link, replace, statusBadge, table } from "../dom.js";

const HISTORY_LIMIT = 200;
const POINTS_LIMIT = 1_000;
const LIVE_POINT_EVERY_MS = 5_000; // as the controller thins them (history.progress_every_ms)
const REREAD_AFTER_MS = 1_000;
const ENDS = new Set(["TaskFinished", "TaskFailed", "TaskCancelled", "TaskRequeued"]);

export function timelinePanels(taskId) {
  const history = h("ol", { class: "history timeline", id: "status-history" });
  const attempts = h("tbody", { id: "task-attempts" });
  const chart = h("div", { id: "task-progress-chart" });
  const panel = (title, ...body) => h("section", { class: "panel" }, h("h2", {}, title), ...body);
  const attemptsTable = table(["#", "Node", "Assigned", "Started", "Ended", "Outcome", "Error"], attempts, {
    class: "grid compact",
  });
  let points = [];
  let scale = { total: null, unit: "" };
  let timer = null;
  let behind = 0; // re-reads in a row that found the timeline behind the task's status

  /** ``status`` is the task's as the page last read it: a timeline that has not caught up with it (the
   * controller writes in batches) is read again a moment later, a few times at most. */
  async function load(status = null) {
    let kept;
    try {
      kept = await api(`/api/tasks/${encodeURIComponent(taskId)}/timeline`);
    } catch {
      return; // the task page shows its own refusal; the panels keep what they have
    }
    const changes = kept.changes;
    replace(history, changes.slice(-HISTORY_LIMIT).reverse().map(changeItem));
    if (!changes.length) replace(history, h("li", { class: "muted" }, "Nothing kept yet"));
    replace(attempts, attemptRows(changes));
    points = kept.progress.slice(-POINTS_LIMIT);
    drawChart();
    const latest = changes.length ? changes[changes.length - 1].lifecycleStatus : null;
    const wanted = status || kept.lifecycleStatus;
    if (latest !== wanted && behind < 10) {
      behind += 1;
      clearTimeout(timer);
      timer = setTimeout(() => load(wanted), REREAD_AFTER_MS);
    } else {
      behind = 0;
    }
  }

  function drawChart() {
    if (!points.length) return replace(chart, h("p", { class: "muted small" }, "No progress reported yet"));
    replace(chart, progressLine(points, { total: scale.total, unit: scale.unit || "", name: "task-progress" }));
  }

  function rereadSoon() {
    clearTimeout(timer);
    timer = setTimeout(() => load(), REREAD_AFTER_MS);
  }

  /** ``task`` is the page's copy of the task (for the progress scale). */
  function onFrame(frame, task) {
    const d = frame.data || {};
    if (task) scale = { total: task.progressTotal ?? null, unit: task.progressUnit || "" };
    if (frame.type === "task_status") {
      history.querySelector("li.muted")?.remove();
      history.prepend(changeItem({ ...d, at: frame.timestamp, detail: d.exception || d.reason || null }));
      while (history.children.length > HISTORY_LIMIT) history.lastElementChild.remove();
      rereadSoon();
    } else if (frame.type === "task_exception") {
      rereadSoon();
    } else if (frame.type === "task_heartbeat" && typeof d.progress === "number") {
      const last = points[points.length - 1];
      if (!last || (d.progress !== last.done && frame.timestamp - last.at >= LIVE_POINT_EVERY_MS)) {
        points = [...points, { at: frame.timestamp, done: d.progress }].slice(-POINTS_LIMIT);
        drawChart();
      }
    }
  }

  return {
    historyPanel: panel("Timeline", history),
    attemptsPanel: panel("Attempts", attemptsTable),
    chart,
    load,
    onFrame,
    setScale(total, unit) {
      scale = { total: total ?? null, unit: unit || "" };
    },
    close() {
      clearTimeout(timer);
    },
  };
}

function changeItem(change) {
  const words = changeWords(change.change) || "changed";
  const where = change.executor ? [" on ", link("/dashboard/skalds", change.executor, { class: "mono" })] : [];
  const attempt = change.attempt ? h("span", { class: "muted" }, ` attempt ${change.attempt}`) : null;
  return h(
    "li",
    { "data-change": change.change || "" },
    h("span", { class: "when" }, clock(change.at)),
    " ",
    statusBadge(change.lifecycleStatus),
    " ",
    h("span", { class: "muted" }, words),
    attempt,
    where,
    change.detail ? h("span", { class: "detail" }, change.detail) : null,
  );
}

/** One row per assignment: where it ran, when it started and ended, how, and the error if it failed. */
export function attemptRows(changes) {
  const rows = [];
  let current = null;
  for (const change of changes) {
    if (change.change === "TaskAssigned") {
      current = { attempt: change.attempt, node: change.executor, assigned: change.at };
      rows.push(current);
    } else if (current && change.change === "TaskStarted") {
      current.started = current.started || change.at;
    } else if (current && ENDS.has(change.change) && !current.ended) {
      Object.assign(current, { ended: change.at, outcome: change, error: change.detail });
    }
  }
  if (!rows.length) return [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Not assigned yet"))];
  return rows.reverse().map((row) =>
    h(
      "tr",
      { "data-attempt": row.attempt ?? "" },
      h("td", { class: "num" }, String(row.attempt ?? "–")),
      h("td", { class: "mono" }, row.node || "–"),
      h("td", {}, clock(row.assigned)),
      h("td", {}, clock(row.started)),
      h("td", {}, clock(row.ended)),
      h("td", {}, row.outcome ? outcomeText(row.outcome) : h("span", { class: "muted" }, "current")),
      h("td", { class: "text-error", title: row.error || "" }, firstLine(row.error)),
    ),
  );
}

function outcomeText(change) {
  return change.change === "TaskRequeued"
    ? h("span", { class: "muted" }, "re-queued")
    : statusBadge(change.lifecycleStatus);
}

/** An error's first line (its message; the traceback is in the timeline and the output). */
function firstLine(text) {
  return String(text || "").split("\n", 1)[0];
}
