// Previous / next with "page p of n": tables show one page at a time, whatever the total.

import { h, replace } from "./dom.js";

export function pager(onPage) {
  const el = h("div", { class: "pager" });
  el.update = (page, pageSize, total, noun) => {
    const pages = Math.max(1, Math.ceil(total / pageSize));
    const button = (text, target, label) =>
      h(
        "button",
        {
          type: "button",
          disabled: target < 1 || target > pages,
          "aria-label": label,
          onclick: () => onPage(target),
        },
        text,
      );
    replace(
      el,
      button("‹ Prev", page - 1, "previous page"),
      h("span", { class: "pager-text", "data-page": page, "data-pages": pages }, `Page ${page} of ${pages}`),
      button("Next ›", page + 1, "next page"),
      h("span", { class: "muted" }, `${total.toLocaleString()} ${noun}`),
    );
  };
  return el;
}
