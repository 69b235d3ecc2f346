// Messages for the operator: what an action did, or why the server refused it. Errors stay until closed;
// confirmations fade. At most a handful are kept on screen.

import { h } from "./dom.js";

const MAX_SHOWN = 4;
const OK_FOR_MS = 5000;

export function notify(text, kind = "ok") {
  const area = document.getElementById("notices");
  const close = () => item.remove();
  const item = h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, text),
    h("button", { class: "close", type: "button", "aria-label": "dismiss", onclick: close }, "×"),
  );
  area.prepend(item);
  while (area.children.length > MAX_SHOWN) area.lastElementChild.remove();
  if (kind !== "error") setTimeout(close, OK_FOR_MS);
}

/** Report a failed API call: the status in words and the server's own message. */
export function refused(action, error) {
  notify(`${action}: ${error.explain ? error.explain() : error.message}`, "error");
}
