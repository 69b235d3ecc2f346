// One task: status, heartbeat and progress (with its chart), error and exception, executor, the actions,
// the attachments editor, its timeline and attempts (task_timeline.js) and its output (task_logs.js).
// Frames for this task patch the page at once; a status change also re-reads the task (throttled) for
// the fields frames do not carry (timestamps, attempts).

import { ACTIONS, PAST, act } from "../actions.js";
import { prependCapped } from "../activity.js";
import { api } from "../api.js";
import { attachmentsEditor } from "../attachments.js";
import { h, replace, scaleOf, setAgo, setProgress, throttle } from "../dom.js";
import { notify, refused } from "../notice.js";
import {
  beatRow,
  detailRows,
  pendingText,
  problemPanels,
  statusLine,
  taskLayout,
  usageText,
} from "./task_view.js";
import { logsPanel } from "./task_logs.js";
import { timelinePanels } from "./task_timeline.js";

const BEATS_LIMIT = 15;
const USAGE_EVERY_MS = 5000; // heartbeat frames carry no CPU/memory: re-read them this often at most

export function mount(root, { params }) {
  const [taskId] = params;
  const path = `/api/tasks/${encodeURIComponent(taskId)}`;
  let task = null;
  const editor = attachmentsEditor({ taskId, version: () => task?.version, onSaved: () => reload() });
  const timeline = timelinePanels(taskId);
  const { nodes, el } = taskLayout(taskId, editor, timeline);
  const output = logsPanel(taskId);
  root.append(...nodes, output.node);

  function paint() {
    replace(el.status, statusLine(task));
    const button = (a) =>
      h(
        "button",
        { type: "button", "data-action": a.name, disabled: !a.allowed(task), onclick: () => run(a) },
        a.label,
      );
    replace(el.actions, ACTIONS.map(button));
    el.pending.textContent = pendingText(task);
    el.usage.textContent = usageText(task);
    replace(el.details, detailRows(task));
    replace(el.problems, problemPanels(task));
  }

  async function run(action) {
    try {
      task = await act(taskId, action.name);
      notify(`${PAST[action.name]}: ${taskId}`);
      paint();
    } catch (error) {
      refused(`${action.label} ${taskId}`, error);
      reload();
    }
  }

  async function reload() {
    try {
      task = await api(path);
      paint();
      editor.show(task);
      setProgress(el.progress, task.progress, scaleOf(task));
      timeline.setScale(task.progressTotal, task.progressUnit);
      el.code.textContent = String(task.heartbeat);
    } catch (error) {
      refused(`Loading task ${taskId}`, error);
    }
  }
  const refetch = throttle(reload, 500);
  /** Only the usage line, so a heartbeat never repaints the page under the attachments editor. */
  const refreshUsage = throttle(async () => {
    try {
      const fresh = await api(path);
      if (!task) return;
      Object.assign(task, { cpuPercent: fresh.cpuPercent, memoryBytes: fresh.memoryBytes });
      el.usage.textContent = usageText(task);
    } catch {
      // the next heartbeat tries again
    }
  }, USAGE_EVERY_MS);

  /** The task, its recent heartbeats, and its timeline as the controller kept it. */
  async function load() {
    await reload();
    const [beats] = await Promise.all([
      api(`${path}/heartbeat?limit=${BEATS_LIMIT}`).catch(() => null),
      timeline.load(),
    ]);
    if (beats) {
      replace(el.beats, beats.heartbeatHistory.slice(-BEATS_LIMIT).reverse().map(beatRow));
      setAgo(el.lastBeat, beats.lastUpdate);
    }
  }

  function onFrame(frame) {
    if (frame.taskId !== taskId || !task) return;
    const d = frame.data || {};
    if (!(frame.type === "task_status" && d.version < task.version)) timeline.onFrame(frame, task);
    switch (frame.type) {
      case "task_status":
        if (d.version < task.version) return; // older than what we hold
        Object.assign(task, {
          lifecycleStatus: d.lifecycleStatus,
          desiredState: d.desiredState,
          version: d.version,
        });
        if (d.executor) task.executor = d.executor;
        paint();
        return refetch();
      case "task_heartbeat": {
        if (task && d.progressTotal !== undefined) {
          Object.assign(task, { progressTotal: d.progressTotal, progressUnit: d.progressUnit });
        }
        setProgress(el.progress, d.progress, task ? scaleOf(task) : null);
        el.code.textContent = String(d.heartbeat);
        el.verdict.textContent = d.verdict || "–";
        setAgo(el.lastBeat, frame.timestamp);
        const report = { receivedAt: frame.timestamp, heartbeat: d.heartbeat, progress: d.progress };
        prependCapped(el.beats, beatRow(report), BEATS_LIMIT);
        if (d.lifecycleStatus && d.lifecycleStatus !== task.lifecycleStatus) refetch();
        else refreshUsage();
        return;
      }
      case "task_verdict":
        el.verdict.textContent = d.verdict;
        return;
      case "task_error":
        task.error = d.error;
        return paint();
      case "task_exception":
        Object.assign(task, { exception: d.exception, lifecycleStatus: d.lifecycleStatus });
        return paint();
      case "task_pause_not_honoured":
        notify(`${taskId}: the worker has not paused after ${Math.round(d.requestedForMs / 1000)}s`, "error");
    }
  }

  load();
  output.load();
  const unmount = () => {
    refetch.cancel();
    refreshUsage.cancel();
    output.close();
    timeline.close();
  };
  return { onFrame, resync: load, unmount };
}
