// Cancel, pause, resume and retry: which ones a task's state allows, and the POST that asks for it. The
// server has the last word: a refusal (401/404/409) comes back as an ApiError with its message.

import { api } from "./api.js";
import { TERMINAL } from "./dom.js";

const live = (task) => !TERMINAL.has(task.lifecycleStatus);

export const ACTIONS = [
  { name: "cancel", label: "Cancel", allowed: (t) => live(t) && t.desiredState !== "cancel" },
  {
    name: "pause",
    label: "Pause",
    allowed: (t) => t.lifecycleStatus === "Running" && t.desiredState === "run",
  },
  {
    name: "resume",
    label: "Resume",
    allowed: (t) => live(t) && (t.lifecycleStatus === "Paused" || t.desiredState === "pause"),
  },
  { name: "retry", label: "Retry", allowed: (t) => TERMINAL.has(t.lifecycleStatus) },
];

export const PAST = {
  cancel: "Cancel requested",
  pause: "Pause requested",
  resume: "Resume requested",
  retry: "Retried",
};

export function act(taskId, name) {
  return api(`/api/tasks/${encodeURIComponent(taskId)}/${name}`, { method: "POST" });
}
