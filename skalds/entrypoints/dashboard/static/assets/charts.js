// Small SVG charts drawn from what the controller keeps (/api/system/dashboard/history, a task's
// /timeline): stacked bars per minute and a line over time. No library, no CDN: a chart is a few dozen
// elements, each with a <title> so hovering tells the numbers.

import { clock, format, h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 600;
const HEIGHT = 140;
const PAD = { left: 34, right: 6, top: 8, bottom: 18 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

const title = (text) => s("title", {}, text);

function frame(maxValue, first, last) {
  const bottom = HEIGHT - PAD.bottom;
  return [
    s("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: bottom, y2: bottom }),
    s("text", { class: "tick", x: PAD.left - 4, y: PAD.top + 8, "text-anchor": "end" }, format(maxValue)),
    s("text", { class: "tick", x: PAD.left - 4, y: bottom, "text-anchor": "end" }, "0"),
    s("text", { class: "tick", x: PAD.left, y: HEIGHT - 4 }, clock(first)),
    s("text", { class: "tick", x: WIDTH - PAD.right, y: HEIGHT - 4, "text-anchor": "end" }, clock(last)),
  ];
}

/** One bar per item, stacked by ``series`` ([{key, label, tone, value(item)}]); ``at(item)`` its time.
 * Each bar carries ``data-at`` and one ``data-<key>`` per series, for tests and for a reader's tools. */
export function stackedBars(items, series, { at = (item) => item.at, name = "chart" } = {}) {
  const totals = items.map((item) => series.reduce((sum, one) => sum + (one.value(item) || 0), 0));
  const top = Math.max(1, ...totals);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(items.length, 1);
  const bars = items.map((item, i) => {
    const data = { class: "bar", "data-at": at(item), "data-total": totals[i] };
    for (const one of series) data[`data-${one.key}`] = one.value(item) || 0;
    const group = s("g", data);
    let y = HEIGHT - PAD.bottom;
    const words = series.map((one) => `${one.label} ${one.value(item) || 0}`).join(", ");
    group.append(title(`${clock(at(item))}: ${words}`));
    for (const one of series) {
      const value = one.value(item) || 0;
      if (!value) continue;
      const height = (value / top) * plotH;
      y -= height;
      const x = PAD.left + i * slot + slot * 0.1;
      group.append(s("rect", { class: `fill-${one.tone}`, x, y, width: slot * 0.8, height }));
    }
    return group;
  });
  const first = items.length ? at(items[0]) : Date.now();
  const last = items.length ? at(items[items.length - 1]) : Date.now();
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" }, frame(top, first, last), bars);
  return h("figure", { class: "chart", "data-chart": name }, svg, legend(series));
}

/** A line through ``points`` ([{at, done}]), up to ``total`` when the worker gave one. */
export function progressLine(points, { total = null, unit = "", name = "progress" } = {}) {
  const top = Math.max(1, total || 0, ...points.map((p) => p.done));
  const first = points.length ? points[0].at : Date.now();
  const last = points.length ? points[points.length - 1].at : first;
  const span = Math.max(last - first, 1);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (p) => PAD.left + ((p.at - first) / span) * plotW;
  const y = (p) => HEIGHT - PAD.bottom - (p.done / top) * plotH;
  const path = points.map((p) => `${x(p).toFixed(1)},${y(p).toFixed(1)}`).join(" ");
  const dots = points.map((p) =>
    s("circle", { class: "dot", cx: x(p), cy: y(p), r: 2 }, title(`${clock(p.at)}: ${format(p.done)} ${unit}`)),
  );
  const svg = s(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" },
    frame(top, first, last),
    points.length > 1 ? s("polyline", { class: "line", points: path }) : null,
    dots,
  );
  return h("figure", { class: "chart", "data-chart": name, "data-points": points.length }, svg);
}

function legend(series) {
  return h(
    "figcaption",
    { class: "chart-legend" },
    series.map((one) => h("span", {}, h("span", { class: `swatch status-${one.tone}` }), ` ${one.label}`)),
  );
}
