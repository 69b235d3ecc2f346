// Alerts: the firing ones (acknowledge, silence), the history (firing and resolved, both times), and the
// silences (expire). Every alert or silence frame re-reads the three lists (throttled): the server decides
// grouping, silencing and what resolved, so the page never guesses.

import { alertSubject } from "../activity.js";
import { api } from "../api.js";
import { ago, h, replace, throttle } from "../dom.js";
import { notify, refused } from "../notice.js";

const HISTORY_LIMIT = 200;
const NAME_STORAGE = "skalds.operator";
const DURATIONS = [
  ["15 min", 15 * 60_000],
  ["1 hour", 3_600_000],
  ["4 hours", 4 * 3_600_000],
  ["1 day", 24 * 3_600_000],
];
const FRAMES = new Set([
  "alert_raised",
  "alert_repeated",
  "alert_resolved",
  "alert_acknowledged",
  "silence_created",
  "silence_expired",
]);

const severity = (a) => h("span", { class: `severity severity-${a.severity}` }, a.severity);
const cell = (...children) => h("td", {}, ...children);

function grid(id, headers, body) {
  const head = h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t))));
  return h("table", { class: "grid", id }, head, body);
}

function empty(body, columns, text) {
  if (!body.children.length) {
    body.append(h("tr", { class: "empty" }, h("td", { colspan: columns, class: "muted" }, text)));
  }
}

export function mount(root) {
  const firing = h("tbody");
  const past = h("tbody");
  const silences = h("tbody");
  const name = h("input", {
    id: "operator-name",
    placeholder: "dashboard",
    value: localStorage.getItem(NAME_STORAGE) || "",
    "aria-label": "your name, recorded with acknowledgements and silences",
    onchange: () => localStorage.setItem(NAME_STORAGE, name.value.trim()),
  });
  const duration = h(
    "select",
    { id: "silence-duration", "aria-label": "how long a silence lasts" },
    DURATIONS.map(([label, ms]) => h("option", { value: String(ms), selected: ms === 3_600_000 }, label)),
  );
  const who = () => name.value.trim() || "dashboard";

  async function act(what, call) {
    try {
      await call();
      notify(what);
      refresh();
    } catch (error) {
      refused(what, error);
    }
  }

  const acknowledge = (a) =>
    act(`Acknowledged ${a.rule} on ${a.subject}`, () =>
      api(`/api/alerts/${encodeURIComponent(a.id)}/ack`, { method: "POST", body: { by: who() } }),
    );
  const silence = (a) =>
    act(`Silenced ${a.rule} on ${a.subject}`, () =>
      api("/api/silences", {
        method: "POST",
        body: { rule: a.rule, subject: a.subject, durationMs: Number(duration.value), createdBy: who() },
      }),
    );
  const expire = (s) =>
    act(`Ended the silence of ${s.rule} on ${s.subject}`, () =>
      api(`/api/silences/${encodeURIComponent(s.id)}?by=${encodeURIComponent(who())}`, { method: "DELETE" }),
    );

  function firingRow(a) {
    const ack = a.acknowledgedBy
      ? h("span", { class: "acknowledged" }, `${a.acknowledgedBy}, `, ago(a.acknowledgedAt))
      : h("button", { type: "button", "data-action": "ack", onclick: () => acknowledge(a) }, "Acknowledge");
    const muted = a.silencedBy
      ? h("span", { class: "muted", "data-silenced": a.silencedBy }, "silenced")
      : h("button", { type: "button", "data-action": "silence", onclick: () => silence(a) }, "Silence");
    return h(
      "tr",
      { "data-alert": a.id },
      cell(severity(a)),
      cell(a.rule),
      cell(alertSubject(a.rule, a.subject)),
      cell(a.message),
      h("td", { class: "count" }, String(a.count)),
      cell(ago(a.raisedAt)),
      cell(ago(a.lastSeenAt)),
      cell(ack),
      cell(muted),
    );
  }

  function historyRow(a) {
    return h(
      "tr",
      { "data-alert": a.id, "data-status": a.status, class: a.active ? "" : "resolved" },
      cell(severity(a)),
      cell(h("span", { class: `alert-status alert-${a.status}` }, a.status)),
      cell(a.rule),
      cell(alertSubject(a.rule, a.subject)),
      cell(a.message),
      h("td", { class: "count" }, String(a.count)),
      cell(ago(a.raisedAt)),
      cell(a.resolvedAt ? ago(a.resolvedAt) : "—"),
    );
  }

  function silenceRow(s) {
    const end =
      s.status === "active"
        ? h("button", { type: "button", "data-action": "expire", onclick: () => expire(s) }, "Expire")
        : h("span", { class: "muted" }, s.expiredBy ? `ended by ${s.expiredBy}` : "ran out");
    return h(
      "tr",
      { "data-silence": s.id, "data-status": s.status, class: s.status === "active" ? "" : "resolved" },
      cell(s.rule),
      cell(s.subject),
      cell(s.status),
      cell(ago(s.startsAt)),
      cell(new Date(s.endsAt).toLocaleString()),
      cell(s.createdBy),
      cell(s.comment || ""),
      cell(end),
    );
  }

  root.append(
    h("h1", {}, "Alerts"),
    h(
      "div",
      { class: "alert-controls" },
      h("label", { for: "operator-name" }, "Your name"),
      name,
      h("label", { for: "silence-duration" }, "Silence for"),
      duration,
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Firing"),
      grid(
        "active-alerts-table",
        ["Severity", "Rule", "Subject", "Message", "Count", "Raised", "Last seen", "Acknowledged", ""],
        firing,
      ),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Silences"),
      grid(
        "silences-table",
        ["Rule", "Subject", "Status", "Created", "Until", "By", "Comment", ""],
        silences,
      ),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "History"),
      grid(
        "alert-history-table",
        ["Severity", "Status", "Rule", "Subject", "Message", "Count", "Raised", "Resolved"],
        past,
      ),
    ),
  );

  async function load() {
    try {
      const [now, then, muted] = await Promise.all([
        api("/api/alerts?active=true"),
        api(`/api/alerts?limit=${HISTORY_LIMIT}`),
        api("/api/silences"),
      ]);
      replace(firing, ...now.items.map(firingRow));
      replace(past, ...then.items.map(historyRow));
      replace(silences, ...muted.items.map(silenceRow));
      empty(firing, 9, "No active alerts");
      empty(past, 8, "No alerts yet");
      empty(silences, 8, "No silences");
    } catch (error) {
      refused("Loading alerts", error);
    }
  }

  const refresh = throttle(load, 500);

  function onFrame(frame) {
    if (FRAMES.has(frame.type)) refresh();
  }

  load();
  return { onFrame, resync: load, unmount: () => refresh.cancel() };
}
