// Tasks: filters by status, class and id (kept in the URL), one page from REST at a time, rows patched by
// frames for the tasks on this page only; new tasks reload page 1 or are counted in a "new" pill elsewhere.

import { api, query } from "../api.js";
import { STATUSES, h, replace, table, taskPath, throttle } from "../dom.js";
import { refused } from "../notice.js";
import { pager } from "../pager.js";
import { createForm } from "./create.js";
import { COLUMNS, mergeFrame, paintRow, taskRow } from "./task_rows.js";

const PAGE_SIZE = 20;
const ID_TYPING_MS = 300;

export function mount(root, { search, navigate }) {
  const state = {
    page: Number(search.get("page")) || 1,
    status: search.get("status") || "",
    className: search.get("class") || "",
    id: search.get("id") || "",
  };
  const rows = new Map();
  let fresh = 0;
  const body = h("tbody");
  const pages = pager((page) => go({ page }));
  const newPill = h("button", {
    type: "button",
    class: "pill",
    hidden: true,
    onclick: () => go({ page: 1 }),
  });
  const statusSelect = h(
    "select",
    { "aria-label": "filter by status", name: "status" },
    ["", ...STATUSES].map((s) => h("option", { value: s, selected: s === state.status }, s || "any status")),
  );
  const classSelect = h(
    "select",
    { "aria-label": "filter by class", name: "className" },
    h("option", { value: "" }, "any class"),
  );
  const idInput = h("input", {
    type: "search",
    name: "id",
    placeholder: "id contains…",
    value: state.id,
    "aria-label": "filter by id",
  });
  const form = createForm({ onCreated: (task) => navigate(taskPath(task.id)) });
  form.hidden = true;
  const newButton = h(
    "button",
    {
      type: "button",
      class: "primary",
      onclick: () => ((form.hidden = !form.hidden), form.hidden || form.focus()),
    },
    "New task",
  );
  let typing = null;
  statusSelect.addEventListener("change", () => go({ status: statusSelect.value, page: 1 }));
  classSelect.addEventListener("change", () => go({ className: classSelect.value, page: 1 }));
  idInput.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => go({ id: idInput.value.trim(), page: 1 }), ID_TYPING_MS);
  });
  root.append(
    h("div", { class: "title-row" }, h("h1", {}, "Tasks"), newButton),
    form,
    h("div", { class: "toolbar" }, statusSelect, classSelect, idInput, newPill, pages),
    table(COLUMNS, body, { id: "tasks-table" }),
  );

  function go(change) {
    Object.assign(state, change);
    const params = query({
      status: state.status,
      class: state.className,
      id: state.id,
      page: state.page > 1 ? state.page : "",
    });
    history.replaceState(null, "", `/dashboard/tasks${params}`);
    load();
  }

  let loading = 0;
  async function load() {
    const mine = ++loading;
    const { page: number, status: lifecycleStatus, className, id } = state;
    const path = `/api/tasks${query({ page: number, pageSize: PAGE_SIZE, lifecycleStatus, className, id })}`;
    try {
      const page = await api(path);
      if (mine !== loading) return; // a newer filter won
      fresh = 0;
      newPill.hidden = true;
      rows.clear();
      pages.update(state.page, PAGE_SIZE, page.total, "tasks");
      replace(
        body,
        page.items.length
          ? page.items.map(row)
          : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No tasks match")),
      );
    } catch (error) {
      refused("Loading tasks", error);
    }
  }
  const reload = throttle(load, 1000);

  function row(task) {
    const shown = taskRow(task);
    rows.set(task.id, shown);
    paintRow(shown, state.status);
    return shown.tr;
  }

  function onFrame(frame) {
    if (frame.type === "task_status" && frame.data?.change === "TaskCreated") return created();
    const shown = frame.taskId && rows.get(frame.taskId);
    if (shown && mergeFrame(shown.task, frame)) paintRow(shown, state.status); // other pages: nothing to draw
  }

  function created() {
    if (state.page === 1 && !state.id && (!state.status || state.status === "Created")) return reload();
    fresh += 1;
    newPill.hidden = false;
    newPill.textContent = `${fresh} new — show`;
  }

  api("/api/tasks/classnames")
    .then((names) => {
      for (const name of names)
        classSelect.append(h("option", { value: name, selected: name === state.className }, name));
      form.setClasses(names);
    })
    .catch((error) => refused("Loading class names", error));
  load();
  return {
    onFrame,
    resync: load,
    unmount() {
      reload.cancel();
      clearTimeout(typing);
    },
  };
}
