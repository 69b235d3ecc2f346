// Inline validation: the API answers 422 with the field it refused (``attachments.seconds``, ``priority``);
// the message goes under the input that holds that field, in the operator's own words where we can.

import { h } from "./dom.js";

/** A labelled input with a slot for its error; ``slot.name`` is the API field it edits. */
export function field(label, input, name) {
  const error = h("div", { class: "field-error", role: "alert", "data-error-for": name, hidden: true });
  const wrap = h(
    "label",
    { class: "field", "data-field": name },
    h("span", { class: "field-label" }, label),
    input,
    error,
  );
  wrap.showError = (text) => {
    error.hidden = !text;
    error.textContent = text || "";
    input.setAttribute("aria-invalid", text ? "true" : "false");
  };
  return wrap;
}

/** Parse a JSON object typed by a person; a message naming the problem otherwise. */
export function parseObject(text) {
  let value;
  try {
    value = JSON.parse(text.trim() || "{}");
  } catch (error) {
    return { error: `not valid JSON: ${error.message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return { error: 'must be a JSON object, like {"seconds": 30}' };
  return { value };
}

/** Put each refused field's message under its input; returns false when no input holds the field. */
export function showApiErrors(fields, error) {
  const problems = error.errors.length ? error.errors : [{ field: error.field, message: error.message }];
  let placed = false;
  for (const problem of problems) {
    const name = String(problem.field || "");
    const target = fields[name] || fields[name.split(".")[0]];
    if (!target) continue;
    const text =
      problems.length === 1 && error.message.startsWith(name) ? error.message : `${name}: ${problem.message}`;
    target.showError(text);
    placed = true;
  }
  return placed;
}

export function clearErrors(fields) {
  for (const f of Object.values(fields)) f.showError("");
}
