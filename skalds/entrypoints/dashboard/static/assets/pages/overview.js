// Overview: node and task counts, status distribution, the last hour's charts, the at-a-glance badges,
// active alerts and recent activity. Counts come from REST; frames patch them (node states at once, task
// counts by a throttled re-read of the summary, which is exact where counting deltas in the browser could
// drift).

import { activityItem, isActivity, prependCapped } from "../activity.js";
import { api } from "../api.js";
import { connectivity, processing, systemHealth } from "../badges.js";
import { h, link, replace, throttle } from "../dom.js";
import { refused } from "../notice.js";
import { historyPanel } from "./overview_history.js";
import { alertLines, card, distribution } from "./overview_parts.js";

const ACTIVITY_LIMIT = 30;

export function mount(root) {
  const nodes = new Map();
  const alerts = new Map();
  let summary = null;
  const cards = {
    nodes: card("nodes", "Nodes online"),
    totalTasks: card("totalTasks", "Tasks"),
    runningTasks: card("runningTasks", "Running"),
    queuedTasks: card("queuedTasks", "Waiting"),
    finishedTasks: card("finishedTasks", "Finished"),
    failedTasks: card("failedTasks", "Failed"),
  };
  const statuses = h("div", { class: "distribution" });
  const backends = h("div", { class: "backends" });
  const alertList = h("ul", { class: "alert-list", id: "active-alerts" });
  const activity = h("ol", { class: "activity-list", id: "activity" });
  const history = historyPanel();
  const panel = (title, body, extra = "") =>
    h("section", { class: `panel ${extra}` }, h("h2", {}, title), body);
  root.append(
    h("h1", {}, "Overview"),
    h("section", { class: "cards" }, Object.values(cards)),
    h(
      "div",
      { class: "columns" },
      h(
        "div",
        { class: "column" },
        panel("Task status", statuses),
        history.node,
        panel(link("/dashboard/alerts", "Active alerts"), alertList),
        panel("Backends", backends),
      ),
      panel("Recent activity", activity, "column"),
    ),
  );

  function renderCounts() {
    const online = [...nodes.values()].filter((status) => status === "online").length;
    cards.nodes.set(`${online} / ${nodes.size}`, connectivity(online, nodes.size));
    if (!summary) return;
    const s = summary;
    const n = (value) => value.toLocaleString();
    cards.totalTasks.set(n(s.totalTasks), systemHealth(s.failedTasks, s.totalTasks));
    cards.runningTasks.set(n(s.runningTasks), processing(s.runningTasks, s.failedTasks));
    cards.queuedTasks.set(n(s.createdTasks + s.assigningTasks));
    cards.finishedTasks.set(n(s.finishedTasks));
    cards.failedTasks.set(n(s.failedTasks));
    replace(statuses, distribution(s));
  }

  const failed = (what) => (error) => refused(`Loading ${what}`, error);
  const loadSummary = () =>
    api("/api/system/dashboard/summary")
      .then((s) => ((summary = s), renderCounts()))
      .catch(failed("the summary"));
  const loadNodes = () =>
    api("/api/skalds")
      .then((page) => {
        nodes.clear();
        for (const node of page.items) nodes.set(node.id, node.status);
        renderCounts();
      })
      .catch(failed("nodes"));
  const loadAlerts = () =>
    api("/api/alerts?active=true")
      .then((page) => {
        alerts.clear();
        for (const a of page.items) alerts.set(a.id, a);
        replace(alertList, alertLines(alerts));
      })
      .catch(failed("alerts"));
  const loadActivity = () =>
    api("/api/system/activity?limit=200")
      .then((page) =>
        replace(activity, page.items.filter(isActivity).slice(0, ACTIVITY_LIMIT).map(activityItem)),
      )
      .catch(failed("activity"));
  const loadBackends = () =>
    api("/api/system/health")
      .catch((error) => error.body || Promise.reject(error)) // a 503 still names what failed
      .then((health) =>
        replace(
          backends,
          Object.entries(health.services || {}).map(([name, state]) => {
            const tone = state === "healthy" ? "online" : "offline";
            return h(
              "span",
              { class: `badge tone-${tone}`, title: health.details?.[name] || "" },
              `${name}: ${state}`,
            );
          }),
        ),
      )
      .catch(failed("health"));
  const refreshSummary = throttle(loadSummary, 1000);
  const refreshNodes = throttle(loadNodes, 2000);

  function onFrame(frame) {
    const d = frame.data || {};
    if (frame.type === "task_status") refreshSummary();
    if (frame.skaldId && !nodes.has(frame.skaldId)) refreshNodes();
    else if (frame.skaldId && nodes.get(frame.skaldId) !== d.status) {
      nodes.set(frame.skaldId, d.status);
      renderCounts();
    }
    if (frame.type === "alert_raised") {
      const { alertId: id, rule, severity, message } = d;
      alerts.set(id, { id, rule, severity, message, raisedAt: frame.timestamp });
      replace(alertList, alertLines(alerts));
    }
    if (frame.type === "alert_resolved" && alerts.delete(d.alertId)) replace(alertList, alertLines(alerts));
    if (isActivity(frame)) prependCapped(activity, activityItem(frame), ACTIVITY_LIMIT);
    history.onFrame(frame);
  }

  function resync() {
    loadSummary();
    loadNodes();
    loadAlerts();
    loadActivity();
    loadBackends();
    history.load();
  }

  resync();
  return {
    onFrame,
    resync,
    unmount() {
      refreshSummary.cancel();
      refreshNodes.cancel();
      history.close();
    },
  };
}
