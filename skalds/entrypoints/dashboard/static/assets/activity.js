// Frames as lines of "recent activity": what changed, on which task or node. Heartbeats are left out:
// they are the pulse, not news, and would push every real change off the list within seconds.

import { clock, h, link, statusBadge, taskPath } from "./dom.js";

const QUIET = new Set(["task_heartbeat", "skald_heartbeat"]);

export function isActivity(frame) {
  // a failure also comes as a task_exception, which carries the error: one line for it, not two
  if (frame.type === "task_status" && frame.data?.change === "TaskFailed") return false;
  return !QUIET.has(frame.type);
}

/** "TaskCancelRequested" -> "cancel requested". */
export function changeWords(change) {
  return String(change || "")
    .replace(/^Task/, "")
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase();
}

export function describe(frame) {
  const d = frame.data || {};
  switch (frame.type) {
    case "task_status":
      return [changeWords(d.change), " ", statusBadge(d.lifecycleStatus)];
    case "task_error":
      return [h("span", { class: "text-error" }, `error: ${d.error}`)];
    case "task_exception":
      return [statusBadge(d.lifecycleStatus), " ", h("span", { class: "text-error" }, d.exception)];
    case "task_verdict":
      return [`heartbeat verdict ${d.previous ?? "–"} → ${d.verdict}`];
    case "task_pause_not_honoured":
      return [`pause not honoured after ${Math.round((d.requestedForMs || 0) / 1000)}s`];
    case "alert_raised":
      return [
        h("span", { class: `severity severity-${d.severity}` }, d.severity),
        ` ${d.rule}: ${d.message}`,
      ];
    case "alert_resolved":
      return [`resolved ${d.rule}`];
    case "skald_status":
      return [`node ${d.health || d.status}`];
    default:
      return [frame.type];
  }
}

export function subject(frame) {
  if (frame.taskId) return link(taskPath(frame.taskId), frame.taskId, { class: "mono" });
  if (frame.skaldId) return link("/dashboard/skalds", frame.skaldId, { class: "mono" });
  return alertSubject(frame.data?.rule, frame.subject);
}

/** An alert's subject is a task id (task_* rules), a node id (node_* rules) or "tasks". */
export function alertSubject(rule, subject) {
  if (String(rule).startsWith("task_")) return link(taskPath(subject), subject, { class: "mono" });
  if (String(rule).startsWith("node_")) return link("/dashboard/skalds", subject, { class: "mono" });
  return h("span", { class: "mono" }, subject || "");
}

export function activityItem(frame) {
  return h(
    "li",
    { class: `activity activity-${frame.type}` },
    h("span", { class: "when" }, clock(frame.timestamp)),
    h("span", { class: "who" }, subject(frame)),
    h("span", { class: "what" }, describe(frame)),
  );
}

/** Prepend ``frame`` to ``list``, keeping at most ``limit`` items (the DOM never grows past it). */
export function prependCapped(list, item, limit) {
  list.prepend(item);
  while (list.children.length > limit) list.lastElementChild.remove();
}
