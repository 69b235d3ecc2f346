// The overview's pieces: count cards with their badge, the status distribution, active alert lines.

import { STATUSES, ago, h, link, replace } from "../dom.js";

export const SHOWN_ALERTS = 10;
const STATUS_KEYS = {
  Created: "createdTasks",
  Assigning: "assigningTasks",
  Running: "runningTasks",
  Paused: "pausedTasks",
  Finished: "finishedTasks",
  Failed: "failedTasks",
  Cancelled: "cancelledTasks",
};

export function card(name, label) {
  const value = h("div", { class: "card-value", "data-count": name }, "–");
  const badge = h("div", { class: "card-badge" });
  const el = h(
    "div",
    { class: "card", "data-card": name },
    h("div", { class: "card-label" }, label),
    value,
    badge,
  );
  el.set = (text, tone) => {
    value.textContent = text;
    if (tone) replace(badge, h("span", { class: `badge tone-${tone.tone}` }, tone.text));
  };
  return el;
}

/** A stacked bar and a legend of all seven statuses with their counts (each a link to the filtered list). */
export function distribution(summary) {
  const total = summary.totalTasks || 0;
  const bar = h("div", { class: "stacked" });
  const legend = h("table", { class: "legend" });
  for (const status of STATUSES) {
    const count = summary[STATUS_KEYS[status]] || 0;
    const share = total ? (100 * count) / total : 0;
    const colour = `status-${status.toLowerCase()}`;
    if (count)
      bar.append(h("div", { class: `seg ${colour}`, style: `width:${share}%`, title: `${status} ${count}` }));
    const name = h("td", {}, h("span", { class: `swatch ${colour}` }), " ");
    name.append(link(`/dashboard/tasks?status=${status}`, status));
    const number = h("td", { class: "num", "data-status-count": status }, count.toLocaleString());
    legend.append(
      h("tr", {}, name, number, h("td", { class: "num muted" }, total ? `${share.toFixed(0)}%` : "")),
    );
  }
  return [bar, legend];
}

export function alertLines(alerts) {
  const items = [...alerts.values()].sort((a, b) => b.raisedAt - a.raisedAt);
  if (!items.length) return [h("li", { class: "muted" }, "No active alerts")];
  const line = (a) => {
    const severity = h("span", { class: `severity severity-${a.severity}` }, a.severity);
    return h("li", {}, severity, " ", h("b", {}, a.rule), ` ${a.message} `, ago(a.raisedAt));
  };
  const more = items.length - SHOWN_ALERTS;
  return [
    items.slice(0, SHOWN_ALERTS).map(line),
    more > 0 ? h("li", {}, link("/dashboard/alerts", `+${more} more`)) : null,
  ];
}
