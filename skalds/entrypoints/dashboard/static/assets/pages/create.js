// The "new task" form: class from /api/tasks/classnames, optional id, priority, attempts, attachments as
// JSON. A 422 lands under the field it names; a 409 (the id exists) under the id.

import { api } from "../api.js";
import { h } from "../dom.js";
import { clearErrors, field, parseObject, showApiErrors } from "../forms.js";
import { notify, refused } from "../notice.js";

export function createForm({ onCreated }) {
  const inputs = {
    className: h("select", { name: "className", required: true }),
    id: h("input", { name: "id", placeholder: "generated when empty", spellcheck: "false" }),
    priority: h("input", { name: "priority", type: "number", value: "0", step: "1" }),
    maxAttempts: h("input", { name: "maxAttempts", type: "number", min: "1", placeholder: "default" }),
    attachments: h("textarea", { name: "attachments", rows: "4", spellcheck: "false" }, "{}"),
  };
  const fields = {
    className: field("Class", inputs.className, "className"),
    id: field("Id", inputs.id, "id"),
    priority: field("Priority", inputs.priority, "priority"),
    maxAttempts: field("Max attempts", inputs.maxAttempts, "maxAttempts"),
    attachments: field("Attachments (JSON)", inputs.attachments, "attachments"),
  };
  const submit = h("button", { type: "submit", class: "primary" }, "Create");
  const form = h(
    "form",
    { class: "panel create-form", id: "create-task", novalidate: true },
    h("h2", {}, "New task"),
    h("div", { class: "form-row" }, fields.className, fields.id, fields.priority, fields.maxAttempts),
    fields.attachments,
    h("div", { class: "form-actions" }, submit),
  );

  form.setClasses = (names) => {
    inputs.className.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  };
  form.focus = () => inputs.className.focus();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    const attachments = parseObject(inputs.attachments.value);
    if (attachments.error) return fields.attachments.showError(attachments.error);
    const body = {
      className: inputs.className.value,
      attachments: attachments.value,
      priority: Number(inputs.priority.value || 0),
    };
    if (inputs.id.value.trim()) body.id = inputs.id.value.trim();
    if (inputs.maxAttempts.value) body.maxAttempts = Number(inputs.maxAttempts.value);
    submit.disabled = true;
    try {
      const task = await api("/api/tasks", { method: "POST", body });
      notify(`Created ${task.id}`);
      onCreated(task);
    } catch (error) {
      if (error.code === "ALREADY_EXISTS") fields.id.showError(error.message);
      else if (error.status === 422) showApiErrors(fields, error);
      refused("Create task", error);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
