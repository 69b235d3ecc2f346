// Small DOM and formatting helpers shared by every page. No framework: pages build elements with h()
// and patch the few cells that live frames change.

export const STATUSES = ["Created", "Assigning", "Running", "Paused", "Finished", "Failed", "Cancelled"];
export const TERMINAL = new Set(["Finished", "Failed", "Cancelled"]);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function link(path, text, attrs = {}) {
  return h("a", { href: path, "data-link": true, ...attrs }, text);
}

export function taskPath(id) {
  return `/dashboard/tasks/${encodeURIComponent(id)}`;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}`, "data-status": status }, status);
}

export function healthBadge(health) {
  return h("span", { class: `badge health-${health}`, "data-health": health }, health);
}

/** Progress is any number the worker chooses: with the total it reported (``task.progressTotal``) it is
 * drawn as "37 / 120 frames" and its share; without, 0-100 is a percentage and more a plain count. */
export function progressBar(progress, scale) {
  const wrap = h("div", { class: "progress" });
  setProgress(wrap, progress, scale);
  return wrap;
}

/** The scale a task's API answer carries (live frames move only the count). */
export function scaleOf(task) {
  return { total: task.progressTotal, unit: task.progressUnit, message: task.progressMessage };
}

export function setProgress(wrap, progress, scale) {
  const known = typeof progress === "number" && Number.isFinite(progress);
  wrap.dataset.progress = known ? String(progress) : "";
  if (!known) return replace(wrap, h("span", { class: "muted" }, "–"));
  const total = scale && typeof scale.total === "number" && scale.total > 0 ? scale.total : null;
  if (total !== null) {
    const share = Math.max(0, Math.min(100, (100 * progress) / total));
    const counted = `${format(progress)} / ${format(total)}${scale.unit ? ` ${scale.unit}` : ""}`;
    const bar = h("div", { class: "bar" }, h("div", { class: "fill", style: `width:${share}%` }));
    const label = h("span", { class: "pct" }, `${counted} (${Math.round(share)}%)`);
    const note = scale.message ? h("span", { class: "muted small" }, ` ${scale.message}`) : null;
    return replace(wrap, bar, label, note);
  }
  if (progress > 100 || progress < 0) {
    return replace(
      wrap,
      h(
        "span",
        { class: "count", title: "the worker's own count (more than 100: not a percentage)" },
        format(progress),
      ),
    );
  }
  const bar = h("div", { class: "bar" }, h("div", { class: "fill", style: `width:${progress}%` }));
  return replace(wrap, bar, h("span", { class: "pct" }, `${Math.round(progress)}%`));
}

export function format(n) {
  return Number.isInteger(n) ? n.toLocaleString() : n.toFixed(1);
}

/** An element showing how long ago ``ms`` was; the page clock re-renders every [data-ago] each second. */
export function ago(ms) {
  const el = h("time", { class: "ago" });
  setAgo(el, ms);
  return el;
}

export function setAgo(el, ms) {
  el.dataset.ago = ms ? String(ms) : "";
  el.title = ms ? new Date(Number(ms)).toLocaleString() : "";
  el.textContent = ms ? relative(Number(ms)) : "–";
}

export function relative(ms, now = Date.now()) {
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return `in ${duration(-s)}`;
  if (s < 2) return "just now";
  return `${duration(s)} ago`;
}

function duration(s) {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

export function clock(ms) {
  return ms ? new Date(Number(ms)).toLocaleTimeString([], { hour12: false }) : "–";
}

export function refreshAgo(root = document) {
  for (const el of root.querySelectorAll("time[data-ago]")) {
    if (el.dataset.ago) el.textContent = relative(Number(el.dataset.ago));
  }
}

/** Call ``fn`` at once, then at most once per ``ms`` while calls keep coming (one trailing call).
 * ``cancel()`` drops a pending trailing call (pages cancel theirs when they unmount). */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  const call = () => {
    if (timer) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return call;
}

/** A table with a header row; ``body`` is the tbody the page fills and patches. */
export function table(headers, body, attrs = {}) {
  const head = h(
    "thead",
    {},
    h(
      "tr",
      {},
      headers.map((t) => h("th", {}, t)),
    ),
  );
  return h("table", { class: "grid", ...attrs }, head, body);
}
