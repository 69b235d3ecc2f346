// How the task page looks: its layout and the pieces it repaints. The page (task.js) owns the data.

import { TERMINAL, ago, clock, format, h, link, progressBar, statusBadge, table } from "../dom.js";

export function taskLayout(taskId, editor, timeline) {
  const el = {
    status: h("span", { id: "task-status" }),
    actions: h("div", { class: "actions", id: "task-actions" }),
    progress: progressBar(null),
    code: h("span", { class: "num", id: "task-heartbeat" }, "–"),
    verdict: h("span", { id: "task-verdict" }, "–"),
    usage: h("span", { id: "task-usage" }, "–"),
    lastBeat: ago(null),
    pending: h("div", { class: "muted small" }),
    problems: h("div", { class: "problems", id: "task-problems" }),
    details: h("dl", { class: "details", id: "task-details" }),
    beats: h("tbody", { id: "heartbeats" }),
  };
  el.progress.id = "task-progress";
  const panel = (title, ...body) => h("section", { class: "panel" }, h("h2", {}, title), ...body);
  const beatLine = h("div", { class: "beat-line" }, "heartbeat ", el.code, " · verdict ", el.verdict);
  beatLine.append(" · last ", el.lastBeat, " · ", el.usage);
  const nodes = [
    h("p", { class: "crumbs" }, link("/dashboard/tasks", "Tasks"), " / "),
    h("div", { class: "title-row" }, h("h1", { class: "mono task-title" }, taskId), el.status, el.actions),
    h(
      "div",
      { class: "columns" },
      h(
        "div",
        { class: "column" },
        panel(
          "Progress",
          h("div", { class: "big-progress" }, el.progress),
          beatLine,
          el.pending,
          timeline.chart,
        ),
        el.problems,
        timeline.attemptsPanel,
        panel("Attachments", editor),
        panel(
          "Recent heartbeats",
          table(["At", "Code", "Progress", "Error"], el.beats, { class: "grid compact" }),
        ),
      ),
      h("div", { class: "column narrow" }, panel("Details", el.details), timeline.historyPanel),
    ),
  ];
  return { nodes, el };
}

export function statusLine(t) {
  const asked = t.desiredState !== "run" && !TERMINAL.has(t.lifecycleStatus);
  const note = asked
    ? h("span", { class: "muted", id: "task-desired" }, ` ${t.desiredState} requested`)
    : null;
  return [statusBadge(t.lifecycleStatus), note];
}

/** The worker process's CPU (100% = one CPU) and resident memory, as its node last measured them. */
export function usageText(t) {
  const cpu = typeof t.cpuPercent === "number" ? `${Math.round(t.cpuPercent)}%` : "–";
  const mib = typeof t.memoryBytes === "number" ? `${(t.memoryBytes / 1048576).toFixed(1)} MiB` : "–";
  return `CPU ${cpu} · RSS ${mib}`;
}

export function pendingText(t) {
  if (t.pendingReason) return `waiting: ${t.pendingReason}`;
  return t.retryAt ? `retry due ${new Date(t.retryAt).toLocaleTimeString()}` : "";
}

export function detailRows(t) {
  const row = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
  const executor = t.executor
    ? link("/dashboard/skalds", t.executor, { class: "mono" })
    : h("span", { class: "muted" }, "unassigned");
  const labels = Object.entries(t.requiredLabels || {}).map(([k, v]) =>
    h("span", { class: "chip" }, `${k}=${v}`),
  );
  return [
    row("Class", t.className),
    row("Executor", executor),
    row("Attempt", h("span", { id: "task-attempt" }, `${t.attempt} of ${t.maxAttempts}`)),
    row("Mode", t.mode),
    row("Priority", String(t.priority)),
    row("Version", String(t.version)),
    row("Created", ago(t.createDateTime)),
    row("Assigned", ago(t.assignedAt)),
    row("Started", ago(t.startedAt)),
    row("Finished", ago(t.finishedAt)),
    row("Updated", ago(t.updateDateTime)),
    row("Source", t.source),
    labels.length ? row("Labels", labels) : null,
  ];
}

/** The worker's current error while it runs; the exception that failed it; an earlier attempt's error. */
export function problemPanels(t) {
  const problem = (title, text, id) =>
    h("section", { class: "panel problem", id }, h("h2", {}, title), h("pre", {}, text));
  const failure = t.exception || (t.lifecycleStatus === "Failed" ? t.lastError : null);
  return [
    t.error ? problem("Error reported by the worker", t.error, "task-error") : null,
    failure ? problem("Exception", failure, "task-exception") : null,
    !failure && t.lastError ? problem("Last error (earlier attempt)", t.lastError, "task-last-error") : null,
  ];
}

export function beatRow(report) {
  const progress = typeof report.progress === "number" ? format(report.progress) : "–";
  return h(
    "tr",
    {},
    h("td", {}, clock(report.receivedAt)),
    h("td", { class: "num" }, String(report.heartbeat)),
    h("td", { class: "num" }, progress),
    h("td", { class: "text-error" }, report.error || ""),
  );
}
