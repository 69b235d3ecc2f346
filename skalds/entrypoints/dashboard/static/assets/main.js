// Boot: the live streams, the connection badge, the API key field, and the router that mounts one page
// at a time. Pages get every live frame while mounted and a "resync" when they should re-read REST data.

import { apiKey, setApiKey } from "./api.js";
import { h, refreshAgo, replace } from "./dom.js";
import { Live } from "./live.js";
import { notify } from "./notice.js";
import { interceptLinks, resolve } from "./router.js";

const STATE_TEXT = {
  live: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  disconnected: "Disconnected",
};

const live = new Live();
let current = null;

function navigate(path, { replace: replacing = false } = {}) {
  if (replacing) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function render() {
  current?.unmount?.();
  current = null;
  const root = document.getElementById("page");
  const route = resolve(location.pathname);
  for (const item of document.querySelectorAll("nav a[data-nav]")) {
    item.classList.toggle("active", route?.nav === item.dataset.nav);
  }
  if (!route) {
    replace(root, h("section", { class: "panel" }, h("h1", {}, "Not found"), h("p", {}, location.pathname)));
    return;
  }
  root.replaceChildren();
  const ctx = { live, params: route.params, search: new URLSearchParams(location.search), navigate };
  current = route.page.mount(root, ctx) || {};
}

function showConnection(state, streams) {
  const badge = document.getElementById("connection");
  badge.className = `connection connection-${state}`;
  badge.dataset.state = state;
  const closed = Object.values(streams).find((s) => s.state === "closed");
  const retry = closed
    ? ` (retrying in ${Math.max(1, Math.round((closed.retryAt - Date.now()) / 1000))}s)`
    : "";
  badge.textContent = STATE_TEXT[state] + retry;
  document.getElementById("stale").hidden = state === "live" || state === "connecting";
  badge.title = Object.values(streams)
    .map((s) => `${s.name}: ${s.state}`)
    .join(", ");
}

function setUpKey() {
  const form = document.getElementById("key-form");
  const input = form.elements.key;
  input.value = apiKey();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    notify(input.value.trim() ? "API key saved in this browser" : "API key cleared");
    live.restart();
    current?.resync?.();
  });
}

setUpKey();
live.onState(showConnection);
live.onFrame((frame) => current?.onFrame?.(frame));
live.onResync(() => current?.resync?.());
live.start();
interceptLinks(navigate);
window.addEventListener("popstate", render);
setInterval(() => refreshAgo(), 1000);
window.skalds = { live };
render();
