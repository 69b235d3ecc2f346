// A task's output on its page: the last lines at once, then every new line as it is stored (an EventSource
// on /api/tasks/<id>/logs/stream, which follows the task into later attempts and ends with it). A level
// filter, a pause for reading, and at most KEEP lines in the page; it scrolls with the output unless the
// reader scrolled up.

import { api, apiKey } from "../api.js";
import { h, replace } from "../dom.js";

const FIRST = 200;
const KEEP = 2000;
const LEVELS = ["", "DEBUG", "INFO", "WARNING", "ERROR"];

function lineRow(line) {
  const at = new Date(line.at).toISOString().slice(11, 23);
  const where = line.logger || line.stream;
  return h(
    "div",
    { class: `log-line level-${line.level.toLowerCase()}`, "data-seq": String(line.seq) },
    h("span", { class: "log-at" }, at),
    h("span", { class: "log-level" }, line.level),
    h("span", { class: "log-where" }, where),
    h("span", { class: "log-message" }, line.message),
  );
}

export function logsPanel(taskId) {
  const base = `/api/tasks/${encodeURIComponent(taskId)}/logs`;
  const lines = h("div", { class: "log-lines", id: "task-logs", role: "log", "aria-live": "polite" });
  const state = h("span", { class: "muted small", id: "task-logs-state" }, "loading…");
  const level = h("select", { id: "task-logs-level", "aria-label": "lowest level shown" },
    ...LEVELS.map((name) => h("option", { value: name }, name || "all levels")));
  const following = h("input", { type: "checkbox", id: "task-logs-follow", checked: true });
  const bar = h("div", { class: "log-bar" }, level, h("label", {}, following, " follow"), state);
  const node = h("section", { class: "panel logs" }, h("h2", {}, "Output"), bar, lines);
  let source = null;
  let attempt = null;

  function add(rows) {
    const atBottom = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40;
    lines.append(...rows);
    while (lines.childElementCount > KEEP) lines.firstElementChild.remove();
    if (atBottom) lines.scrollTop = lines.scrollHeight;
  }

  function close() {
    if (source) source.close();
    source = null;
  }

  function follow(since) {
    close();
    const params = new URLSearchParams({ since: String(since) });
    if (attempt !== null) params.set("attempt", String(attempt));
    if (level.value) params.set("level", level.value);
    const key = apiKey();
    if (key) params.set("apiKey", key);
    source = new EventSource(`${base}/stream?${params}`);
    state.textContent = `following attempt ${attempt}`;
    source.addEventListener("task_log", (event) => {
      const line = JSON.parse(event.data);
      if (line.attempt !== attempt) {
        attempt = line.attempt;
        add([h("div", { class: "log-attempt" }, `attempt ${attempt}`)]);
        state.textContent = `following attempt ${attempt}`;
      }
      add([lineRow(line)]);
    });
    source.addEventListener("task_log_end", (event) => {
      state.textContent = `ended: ${JSON.parse(event.data).lifecycleStatus}`;
      close();
    });
  }

  async function load() {
    close();
    const params = new URLSearchParams({ limit: String(FIRST) });
    if (level.value) params.set("level", level.value);
    try {
      const page = await api(`${base}?${params}`);
      attempt = page.attempt;
      replace(lines, page.lines.map(lineRow));
      lines.scrollTop = lines.scrollHeight;
      const shown = page.lines.length ? `the last ${page.lines.length} lines` : "no output yet";
      state.textContent = `attempt ${page.attempt}: ${shown}`;
      if (following.checked) follow(page.next);
    } catch (error) {
      state.textContent = `output unavailable: ${error.message}`;
    }
  }

  level.addEventListener("change", load);
  following.addEventListener("change", () => (following.checked ? load() : close()));
  return { node, load, close };
}
