// Alerts: the active ones, and the history (newest first, capped). Raised and resolved frames patch both.

import { alertSubject, prependCapped } from "../activity.js";
import { api } from "../api.js";
import { ago, h, replace, setAgo } from "../dom.js";
import { refused } from "../notice.js";

const HISTORY_LIMIT = 200;

function subject(alert) {
  return alertSubject(alert.rule, alert.subject);
}

function row(alert) {
  const resolved = ago(alert.resolvedAt);
  const tr = h(
    "tr",
    { "data-alert": alert.id, class: alert.active ? "" : "resolved" },
    h("td", {}, h("span", { class: `severity severity-${alert.severity}` }, alert.severity)),
    h("td", {}, alert.rule),
    h("td", {}, subject(alert)),
    h("td", {}, alert.message),
    h("td", {}, ago(alert.raisedAt)),
    h("td", {}, resolved),
  );
  tr.resolve = (at) => {
    tr.classList.add("resolved");
    setAgo(resolved, at);
  };
  return tr;
}

function table(id, body) {
  return h(
    "table",
    { class: "grid", id },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Severity", "Rule", "Subject", "Message", "Raised", "Resolved"].map((t) => h("th", {}, t)),
      ),
    ),
    body,
  );
}

export function mount(root) {
  const active = h("tbody");
  const past = h("tbody");
  const empty = (body, text) =>
    body.children.length ||
    body.append(h("tr", { class: "empty" }, h("td", { colspan: 6, class: "muted" }, text)));
  root.append(
    h("h1", {}, "Alerts"),
    h("section", { class: "panel" }, h("h2", {}, "Active"), table("active-alerts-table", active)),
    h("section", { class: "panel" }, h("h2", {}, "History"), table("alert-history-table", past)),
  );

  async function load() {
    try {
      const [now, then] = await Promise.all([
        api("/api/alerts?active=true"),
        api(`/api/alerts?limit=${HISTORY_LIMIT}`),
      ]);
      replace(active, now.items.map(row));
      replace(past, then.items.map(row));
      empty(active, "No active alerts");
      empty(past, "No alerts yet");
    } catch (error) {
      refused("Loading alerts", error);
    }
  }

  function onFrame(frame) {
    const d = frame.data || {};
    if (frame.type === "alert_raised") {
      const alert = {
        id: d.alertId,
        rule: d.rule,
        severity: d.severity,
        subject: frame.subject,
        message: d.message,
        raisedAt: frame.timestamp,
        active: true,
      };
      for (const body of [active, past]) {
        body.querySelector("tr.empty")?.remove();
        prependCapped(body, row(alert), HISTORY_LIMIT);
      }
    } else if (frame.type === "alert_resolved") {
      active.querySelector(`tr[data-alert="${CSS.escape(d.alertId)}"]`)?.remove();
      past.querySelector(`tr[data-alert="${CSS.escape(d.alertId)}"]`)?.resolve(frame.timestamp);
      empty(active, "No active alerts");
    }
  }

  load();
  return { onFrame, resync: load };
}
