// Client-side routes under /dashboard. The server answers index.html for all of them, so a reload or a
// pasted link lands on the same page.

import * as alerts from "./pages/alerts.js";
import * as nodes from "./pages/nodes.js";
import * as overview from "./pages/overview.js";
import * as task from "./pages/task.js";
import * as tasks from "./pages/tasks.js";

const ROUTES = [
  { pattern: /^\/dashboard\/?$/, page: overview, nav: "overview" },
  { pattern: /^\/dashboard\/skalds\/?$/, page: nodes, nav: "skalds" },
  { pattern: /^\/dashboard\/tasks\/?$/, page: tasks, nav: "tasks" },
  { pattern: /^\/dashboard\/tasks\/(.+)$/, page: task, nav: "tasks" },
  { pattern: /^\/dashboard\/alerts\/?$/, page: alerts, nav: "alerts" },
];

export function resolve(pathname) {
  for (const route of ROUTES) {
    const match = pathname.match(route.pattern);
    if (match) return { ...route, params: match.slice(1).map(decodeURIComponent) };
  }
  return null;
}

/** Follow same-origin /dashboard links without a page load. */
export function interceptLinks(navigate) {
  document.addEventListener("click", (event) => {
    const anchor = event.target.closest("a[href]");
    if (!anchor || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || anchor.target) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith("/dashboard")) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}
