// The overview's "Last hour" panel: tasks by status per minute (as the controller sampled them) and the
// tasks that finished, failed or were cancelled in each minute. Read from /api/system/dashboard/history;
// re-read when a task ends (throttled) and once a minute, so the charts follow without a poll per frame.

import { api } from "../api.js";
import { stackedBars } from "../charts.js";
import { STATUSES, TERMINAL, h, replace, throttle } from "../dom.js";
import { refused } from "../notice.js";

const MINUTES = 60;
const REREAD_MS = 60_000;

const byStatus = STATUSES.map((status) => ({
  key: status.toLowerCase(),
  label: status,
  tone: status.toLowerCase(),
  value: (minute) => minute.byStatus?.[status] || 0,
}));
const outcomes = [
  { key: "finished", label: "Finished", tone: "finished", value: (minute) => minute.finished },
  { key: "failed", label: "Failed", tone: "failed", value: (minute) => minute.failed },
  { key: "cancelled", label: "Cancelled", tone: "cancelled", value: (minute) => minute.cancelled },
];

export function historyPanel() {
  const body = h("div", { id: "history-charts" }, h("p", { class: "muted" }, "Loading…"));
  const node = h("section", { class: "panel" }, h("h2", {}, "Last hour"), body);

  async function load() {
    try {
      const history = await api(`/api/system/dashboard/history?minutes=${MINUTES}`);
      // a minute nobody sampled (the controller was down) draws as nothing, not as zero tasks
      replace(
        body,
        h("div", { class: "chart-title" }, "Tasks by status"),
        stackedBars(history.items, byStatus, { name: "status-per-minute" }),
        h("div", { class: "chart-title" }, "Ended per minute"),
        stackedBars(history.items, outcomes, { name: "outcomes-per-minute" }),
      );
    } catch (error) {
      refused("Loading the history", error);
    }
  }
  // a moment after the frame: the controller writes the history in batches (every 0.5 s)
  let later = null;
  const reload = throttle(() => {
    clearTimeout(later);
    later = setTimeout(load, 1000);
  }, 2000);
  const timer = setInterval(load, REREAD_MS);

  function onFrame(frame) {
    if (frame.type === "task_status" && TERMINAL.has(frame.data?.lifecycleStatus)) reload();
    if (frame.type === "task_exception") reload();
  }

  return {
    node,
    load,
    onFrame,
    close() {
      clearInterval(timer);
      clearTimeout(later);
      reload.cancel();
    },
  };
}
