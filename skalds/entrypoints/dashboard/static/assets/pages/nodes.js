// Nodes: mode, state, supported classes, current tasks, last heartbeat. The list comes from REST once;
// frames patch the nodes in memory and the rows on the current page only.

import { api } from "../api.js";
import { ago, h, healthBadge, link, replace, setAgo, taskPath, throttle } from "../dom.js";
import { refused } from "../notice.js";
import { pager } from "../pager.js";

const PAGE_SIZE = 20;
const SHOWN_CLASSES = 3;
const SHOWN_TASKS = 3;

function classes(list) {
  const more = list.length - SHOWN_CLASSES;
  return [
    list.slice(0, SHOWN_CLASSES).map((c) => h("span", { class: "chip" }, c)),
    more > 0 ? h("span", { class: "muted" }, ` +${more} more`) : null,
  ];
}

function tasks(ids) {
  const more = ids.length - SHOWN_TASKS;
  return [
    h("b", { class: "num" }, String(ids.length)),
    " ",
    ids.slice(0, SHOWN_TASKS).map((id) => [link(taskPath(id), id, { class: "mono small" }), " "]),
    more > 0 ? h("span", { class: "muted" }, `+${more}`) : null,
  ];
}

function usage(node) {
  const pct = (v) => (typeof v === "number" ? `${Math.round(v)}%` : "–");
  return `${pct(node.cpuPercent)} / ${pct(node.memoryPercent)}`;
}

export function mount(root, { search }) {
  const state = {
    page: Number(search.get("page")) || 1,
    id: search.get("id") || "",
    health: search.get("health") || "",
  };
  const nodes = new Map();
  const rows = new Map();
  const body = h("tbody");
  const pages = pager((page) => go({ page }));
  const idInput = h("input", {
    type: "search",
    placeholder: "node id contains…",
    value: state.id,
    "aria-label": "filter by node id",
  });
  const healthSelect = h(
    "select",
    { "aria-label": "filter by state" },
    ["", "online", "suspect", "offline"].map((v) =>
      h("option", { value: v, selected: v === state.health }, v || "any state"),
    ),
  );
  idInput.addEventListener("input", () => go({ id: idInput.value.trim(), page: 1 }));
  healthSelect.addEventListener("change", () => go({ health: healthSelect.value, page: 1 }));
  root.append(
    h("h1", {}, "Nodes"),
    h("div", { class: "toolbar" }, idInput, healthSelect, pages),
    h(
      "table",
      { class: "grid", id: "nodes-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            "Node",
            "Mode",
            "State",
            "Supported classes",
            "Current tasks",
            "Capacity",
            "CPU / mem",
            "Last heartbeat",
          ].map((t) => h("th", {}, t)),
        ),
      ),
      body,
    ),
  );

  function go(change) {
    Object.assign(state, change);
    const params = new URLSearchParams(
      Object.entries(state).filter(([k, v]) => v && !(k === "page" && v === 1)),
    );
    history.replaceState(null, "", `/dashboard/skalds${params.size ? `?${params}` : ""}`);
    render();
  }

  function matching() {
    return [...nodes.values()].filter(
      (n) => (!state.id || n.id.includes(state.id)) && (!state.health || n.health === state.health),
    );
  }

  function render() {
    const shown = matching();
    const pageCount = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    state.page = Math.min(Math.max(1, state.page), pageCount);
    pages.update(state.page, PAGE_SIZE, shown.length, "nodes");
    rows.clear();
    const slice = shown.slice((state.page - 1) * PAGE_SIZE, state.page * PAGE_SIZE);
    replace(
      body,
      slice.length ? slice.map(row) : h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No nodes")),
    );
  }

  function row(node) {
    const cells = {
      state: h("td"),
      tasks: h("td"),
      usage: h("td", { class: "num", "data-usage": "" }),
      beat: ago(node.lastHeartbeat),
    };
    const tr = h(
      "tr",
      { "data-node": node.id },
      h("td", { class: "mono" }, node.id, node.draining ? h("span", { class: "chip" }, "draining") : null),
      h("td", {}, node.mode || node.type),
      cells.state,
      h("td", {}, classes(node.supportedTasks)),
      cells.tasks,
      h("td", { class: "num" }, node.capacity ?? "∞"),
      cells.usage,
      h("td", {}, cells.beat),
    );
    rows.set(node.id, { tr, cells });
    patch(node);
    return tr;
  }

  function patch(node) {
    const shown = rows.get(node.id);
    if (!shown) return;
    replace(shown.cells.state, healthBadge(node.health));
    replace(shown.cells.tasks, tasks(node.currentTasks));
    shown.cells.usage.textContent = usage(node);
    setAgo(shown.cells.beat, node.lastHeartbeat);
  }

  const load = () =>
    api("/api/skalds")
      .then((page) => {
        nodes.clear();
        for (const n of page.items) nodes.set(n.id, { ...n, lastHeartbeat: Number(n.lastHeartbeat) || null });
        render();
      })
      .catch((error) => refused("Loading nodes", error));
  const reload = throttle(load, 2000);

  function onFrame(frame) {
    if (!frame.skaldId) return;
    const node = nodes.get(frame.skaldId);
    if (!node) return reload();
    const d = frame.data || {};
    const before = node.health;
    node.status = d.status ?? node.status;
    node.health = d.health ?? node.health;
    if (frame.type === "skald_heartbeat") {
      node.lastHeartbeat = frame.timestamp;
      node.currentTasks = d.tasks || [];
      if ("cpuPercent" in d) Object.assign(node, { cpuPercent: d.cpuPercent, memoryPercent: d.memoryPercent });
    }
    if (state.health && before !== node.health)
      render(); // the node leaves or joins the filtered list
    else patch(node);
  }

  load();
  return { onFrame, resync: load, unmount: () => reload.cancel() };
}
