// The attachments editor of the task page: JSON in a textarea, saved with PUT /api/tasks/{id}/attachments.
// The worker's model validates it on the server; a 422 shows under the editor naming the field. While the
// operator types, a newer version from the server is announced rather than written over their text.

import { api } from "./api.js";
import { TERMINAL, h } from "./dom.js";
import { field, parseObject, showApiErrors } from "./forms.js";
import { notify, refused } from "./notice.js";

export function attachmentsEditor({ taskId, version, onSaved }) {
  const input = h("textarea", {
    name: "attachments",
    rows: "5",
    spellcheck: "false",
    id: "attachments-input",
  });
  const slot = field("Attachments (JSON, validated by the worker's model)", input, "attachments");
  const info = h("div", { class: "muted small", id: "attachments-info" });
  const save = h("button", { type: "submit", class: "primary" }, "Save attachments");
  const revert = h("button", { type: "button" }, "Revert");
  const form = h(
    "form",
    { class: "attachments", id: "attachments-form", novalidate: true },
    slot,
    h("div", { class: "form-actions" }, save, revert, info),
  );
  let shown = null;
  let dirty = false;

  input.addEventListener("input", () => (dirty = true));
  revert.addEventListener("click", () => {
    dirty = false;
    slot.showError("");
    form.show(shown, true);
  });

  /** Show the server's attachments unless the operator has unsaved edits (then say a newer one exists). */
  form.show = (task, force = false) => {
    const changed = shown && task.attachmentsVersion !== shown.attachmentsVersion;
    shown = task;
    const ended = TERMINAL.has(task.lifecycleStatus);
    save.disabled = ended;
    save.title = ended ? `a ${task.lifecycleStatus} task takes no new attachments; Retry it first` : "";
    const applied = task.appliedAttachmentsVersion;
    info.textContent = `version ${task.attachmentsVersion}${applied ? ` · applied by the worker: v${applied}` : ""}`;
    if (!dirty || force) input.value = JSON.stringify(task.attachments ?? {}, null, 2);
    else if (changed) info.textContent += " · changed on the server while you edit: Revert to see it";
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    slot.showError("");
    const parsed = parseObject(input.value);
    if (parsed.error) return slot.showError(parsed.error);
    save.disabled = true;
    try {
      const body = { attachments: parsed.value, expectedVersion: version() };
      const reply = await api(`/api/tasks/${encodeURIComponent(taskId)}/attachments`, {
        method: "PUT",
        body,
      });
      dirty = false;
      notify(reply.message || "Attachments saved");
      onSaved(reply.data);
    } catch (error) {
      if (error.status === 422) showApiErrors({ attachments: slot }, error) || slot.showError(error.message);
      refused("Save attachments", error);
    } finally {
      save.disabled = TERMINAL.has(shown?.lifecycleStatus);
    }
  });
  return form;
}
